// cni-driver: a CNI runtime for Larch's tests and benchmarks, built on libcni
// (the library containerd and CRI-O call plugins with), so that larch-cni is
// exercised exactly as a container runtime would exercise it.
//
//	cni-driver add|check|del CONFLIST NETNS_PATH CONTAINER_ID IFNAME [CNI_ARGS]
//	cni-driver bench CONFLIST NETNS_PREFIX COUNT
//
// CNI_PATH (required) is the plugin search path; CNI_CACHE_DIR (default
// /var/lib/cni) the result cache. `add` prints the result; on failure the
// error goes to stderr (and a CNI error object to stdout) with exit status 1.
// `bench` adds then deletes COUNT pods in the existing namespaces
// /run/netns/NETNS_PREFIX0.. and prints the latency percentiles.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func die(err error) {
	fmt.Fprintln(os.Stderr, "cni-driver:", err)
	if e, ok := err.(*types.Error); ok {
		b, _ := json.Marshal(e)
		fmt.Println(string(b))
	}
	os.Exit(1)
}

func runtimeConf(netns, id, ifname, args string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: ifname}
	for _, kv := range strings.Split(args, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			rt.Args = append(rt.Args, [2]string{k, v})
		}
	}
	return rt
}

func pct(d []time.Duration, p float64) float64 {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p*float64(len(s)))) - 1
	if p == 0.5 {
		i = len(s) / 2
	}
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return float64(s[i].Microseconds()) / 1000
}

func mean(d []time.Duration) float64 {
	var t time.Duration
	for _, x := range d {
		t += x
	}
	return float64(t.Microseconds()) / 1000 / float64(len(d))
}

func main() {
	if len(os.Args) < 5 {
		fmt.Fprintln(os.Stderr, "usage: cni-driver add|check|del CONFLIST NETNS CONTAINER_ID IFNAME [CNI_ARGS]\n       cni-driver bench CONFLIST NETNS_PREFIX COUNT")
		os.Exit(2)
	}
	path := os.Getenv("CNI_PATH")
	if path == "" {
		die(fmt.Errorf("CNI_PATH is not set"))
	}
	cache := os.Getenv("CNI_CACHE_DIR")
	if cache == "" {
		cache = "/var/lib/cni"
	}
	cni := libcni.NewCNIConfigWithCacheDir(strings.Split(path, ":"), cache, nil)
	list, err := libcni.ConfListFromFile(os.Args[2])
	if err != nil {
		die(err)
	}
	ctx := context.Background()
	cmd := os.Args[1]
	if cmd == "bench" {
		var n int
		if _, err := fmt.Sscan(os.Args[4], &n); err != nil || n < 1 {
			die(fmt.Errorf("COUNT %q: must be a positive integer", os.Args[4]))
		}
		add := make([]time.Duration, n)
		del := make([]time.Duration, n)
		for i := 0; i < n; i++ {
			rt := runtimeConf(fmt.Sprintf("/run/netns/%s%d", os.Args[3], i), fmt.Sprintf("bench-%d", i), "eth0", "")
			t := time.Now()
			if _, err := cni.AddNetworkList(ctx, list, rt); err != nil {
				die(fmt.Errorf("add %d: %w", i, err))
			}
			add[i] = time.Since(t)
		}
		for i := 0; i < n; i++ {
			rt := runtimeConf(fmt.Sprintf("/run/netns/%s%d", os.Args[3], i), fmt.Sprintf("bench-%d", i), "eth0", "")
			t := time.Now()
			if err := cni.DelNetworkList(ctx, list, rt); err != nil {
				die(fmt.Errorf("del %d: %w", i, err))
			}
			del[i] = time.Since(t)
		}
		fmt.Printf("add_p50_ms=%.3f add_p99_ms=%.3f add_mean_ms=%.3f del_p50_ms=%.3f del_p99_ms=%.3f del_mean_ms=%.3f count=%d\n",
			pct(add, 0.5), pct(add, 0.99), mean(add), pct(del, 0.5), pct(del, 0.99), mean(del), n)
		return
	}
	if len(os.Args) < 6 {
		die(fmt.Errorf("%s needs CONFLIST NETNS CONTAINER_ID IFNAME", cmd))
	}
	args := ""
	if len(os.Args) > 6 {
		args = os.Args[6]
	}
	rt := runtimeConf(os.Args[3], os.Args[4], os.Args[5], args)
	switch cmd {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			die(err)
		}
		if err := res.Print(); err != nil {
			die(err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			die(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			die(err)
		}
	default:
		die(fmt.Errorf("unknown command %q", cmd))
	}
}
