# Larch: one non-recursive Makefile. `make V=1` shows the commands.
#
#   make            build build/bin/{larchd,larchctl}
#   make check      install missing Debian packages, build, run every test
#                   (unit, unit under ASan+UBSan, API, invariants, crash)
#   make demo       install missing packages, run the demo (scripts/demo.sh)
#   make bench      the benchmarks (bench/run.sh); results in docs/benchmarks.md
#   make SANITIZE=address,undefined BUILD=build/san ...   a sanitizer build

BUILD    ?= build
CC       ?= cc
SANITIZE ?=
OPT      ?= -O2 -g

WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
        -Wformat=2 -Wno-format-nonliteral -Wpointer-arith -Wvla
ifeq ($(CI),true)
WARN += -Werror
endif

CPPFLAGS += -Ilib -D_GNU_SOURCE
CFLAGS   += -std=gnu11 $(OPT) $(WARN) -pthread -fno-strict-aliasing
LDLIBS_LIB := -lsqlite3 -ljansson -lyaml -lcurl -lmnl -lpthread
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

ifeq ($(V),1)
Q :=
say :=
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2);
endif

LIB_SRC    := $(wildcard lib/*.c)
LARCHD_SRC := $(wildcard larchd/*.c)
CTL_SRC    := $(wildcard ctl/*.c)
CNI_SRC    := $(wildcard cni/*.c)
AGENT_SRC  := $(wildcard agent/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
BENCH_SRC  := $(wildcard bench/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBLARCH := $(BUILD)/liblarch.a
BINS     := $(BUILD)/bin/larchd $(BUILD)/bin/larchctl $(BUILD)/bin/larch-cni \
            $(BUILD)/bin/larch-agent
UNITS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCHES  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all check unit unit-san api api-san netns netns-san policy demo bench deps clean
.SECONDARY:
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	$(call say,CC,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIBLARCH): $(call obj,$(LIB_SRC))
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/larchd: $(call obj,$(LARCHD_SRC)) $(LIBLARCH)
	$(call say,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ -lmicrohttpd $(LDLIBS_LIB)

$(BUILD)/bin/larchctl: $(call obj,$(CTL_SRC)) $(LIBLARCH)
	$(call say,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ $(LDLIBS_LIB)

$(BUILD)/bin/larch-cni: $(call obj,$(CNI_SRC)) $(LIBLARCH)
	$(call say,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ $(LDLIBS_LIB)

$(BUILD)/bin/larch-agent: $(call obj,$(AGENT_SRC)) $(LIBLARCH)
	$(call say,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ -lmicrohttpd -lnftnl $(LDLIBS_LIB)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBLARCH)
	$(call say,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ -lcmocka $(LDLIBS_LIB)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBLARCH)
	$(call say,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $^ $(LDLIBS_LIB)

deps:
	$(Q)scripts/deps.sh

# Unit tests (cmocka). Each binary runs on its own: build/tests/test_prefix
unit: $(UNITS)
	$(Q)set -e; for t in $(UNITS); do echo "== $$t"; $$t; done

unit-san:
	$(Q)$(MAKE) --no-print-directory BUILD=build/san SANITIZE=address,undefined OPT="-O1 -g" unit

api: $(BINS)
	$(Q)LARCH_BIN=$(abspath $(BUILD)/bin) /usr/bin/python3 -m pytest -q tests/api

# The API suite against larchd built with ASan+UBSan (the suite fails a test
# whose daemon log holds a sanitizer report).
api-san:
	$(Q)$(MAKE) --no-print-directory BUILD=build/san SANITIZE=address,undefined OPT="-O1 -g" all
	$(Q)LARCH_BIN=$(abspath build/san/bin) /usr/bin/python3 -m pytest -q tests/api

# The libcni runtime the CNI tests and benchmarks drive larch-cni with.
$(BUILD)/tests/cni-driver: tests/cni/driver/main.go tests/cni/driver/build.sh
	$(call say,GO,$@)
	$(Q)sh tests/cni/driver/build.sh $@

# Network-namespace tests (root): the CNI plugin against the spec, and the
# 2 racks x 2 hosts cluster. Each creates and removes its own namespaces.
netns: $(BINS) $(BUILD)/tests/cni-driver
	$(Q)set -e; for t in tests/netns/test_*.sh; do echo "== $$t"; \
		LARCH_BIN=$(abspath $(BUILD)/bin) CNI_DRIVER=$(abspath $(BUILD)/tests/cni-driver) $$t; done
	$(Q)echo "== tests/netns/test_kept.sh (4 tables)"; \
		NFT_TABLES=4 LARCH_BIN=$(abspath $(BUILD)/bin) tests/netns/test_kept.sh
	$(Q)echo "== tests/netns/test_policy.sh (2 tables)"; \
		AGENT_FLAGS="--nft-tables 2" LARCH_BIN=$(abspath $(BUILD)/bin) \
		CNI_DRIVER=$(abspath $(BUILD)/tests/cni-driver) tests/netns/test_policy.sh

# Golden tests of the policy compiler (root: nft checks each ruleset in a
# namespace of its own), the agent's netlink backend against nft, and the
# iptables backend's differences against loading the whole ruleset.
policy: $(BINS)
	$(Q)LARCH_BIN=$(abspath $(BUILD)/bin) tests/policy/test_golden.sh
	$(Q)LARCH_BIN=$(abspath $(BUILD)/bin) tests/policy/test_netlink.sh
	$(Q)LARCH_BIN=$(abspath $(BUILD)/bin) tests/policy/test_ipt_diff.sh

# The same with larchd, the agent and larch-cni built with ASan+UBSan.
netns-san: $(BUILD)/tests/cni-driver
	$(Q)$(MAKE) --no-print-directory BUILD=build/san SANITIZE=address,undefined OPT="-O1 -g" all
	$(Q)set -e; for t in tests/netns/test_*.sh; do echo "== $$t (sanitizers)"; \
		LARCH_BIN=$(abspath build/san/bin) CNI_DRIVER=$(abspath $(BUILD)/tests/cni-driver) \
		NSP=lxs $$t; done
	$(Q)echo "== tests/netns/test_kept.sh (4 tables, sanitizers)"; \
		NFT_TABLES=4 LARCH_BIN=$(abspath build/san/bin) NSP=lxs tests/netns/test_kept.sh

check: deps
	$(Q)$(MAKE) --no-print-directory all unit
	$(Q)$(MAKE) --no-print-directory unit-san
	$(Q)$(MAKE) --no-print-directory api
	$(Q)$(MAKE) --no-print-directory api-san
	$(Q)$(MAKE) --no-print-directory policy
	$(Q)$(MAKE) --no-print-directory BUILD=build/san SANITIZE=address,undefined OPT="-O1 -g" policy
	$(Q)$(MAKE) --no-print-directory netns
	$(Q)$(MAKE) --no-print-directory netns-san

demo: deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/tests/cni-driver
	$(Q)scripts/demo.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCHES) $(BUILD)/tests/cni-driver
	$(Q)bench/run.sh
	$(Q)bench/cni.sh
	$(Q)bench/datapath.sh
	$(Q)bench/converge.sh 90
	$(Q)bench/policy.sh 3500 12000 3
	$(Q)FIREWALL=iptables bench/policy.sh 3500 12000 1
	$(Q)bench/policy_agent.sh 3500 12000 5
	$(Q)WORLD_PORTS=distinct bench/policy.sh 3500 12000 3
	$(Q)WORLD_PORTS=distinct bench/policy_agent.sh 3500 12000 5
	$(Q)bench/policy_datapath.sh 3 5 200 10000
	$(Q)FIREWALL=iptables bench/policy_datapath.sh 3 5 200 10000

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
