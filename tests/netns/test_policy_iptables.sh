#!/bin/bash
# TAP: tests/netns/test_policy.sh with the agents' iptables backend
# (iptables-restore and ipset instead of nftables).
FIREWALL=iptables exec "$(dirname "$0")/test_policy.sh"
