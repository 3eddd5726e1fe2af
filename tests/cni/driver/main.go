// cni-driver: a CNI runtime for Larch's tests and benchmarks, built on libcni
// (the library containerd and CRI-O call plugins with), so that larch-cni is
// exercised exactly as a container runtime would exercise it.
//
//	cni-driver add|check|del CONFLIST NETNS_PATH CONTAINER_ID IFNAME [CNI_ARGS]
//	cni-driver bench CONFLIST NETNS_PREFIX COUNT
//	cni-driver serve
//
// CNI_PATH (required) is the plugin search path; CNI_CACHE_DIR (default
// /var/lib/cni) the result cache. `add` prints the result; on failure the
// error goes to stderr (and a CNI error object to stdout) with exit status 1.
// `bench` adds then deletes COUNT pods in the existing namespaces
// /run/netns/NETNS_PREFIX0.. and prints the latency percentiles.
// `serve` reads requests "add CONFLIST NETNS_PATH CONTAINER_ID IFNAME
// [CNI_ARGS]" from stdin, one per line, and answers each with one line:
// "ok T0 T1 RESULT" (T0, T1: CLOCK_MONOTONIC seconds just before and after
// the plugin call, comparable with other processes' monotonic clocks; RESULT
// the result as one line of JSON) or "error MESSAGE". It lets a benchmark time
// ADD without counting this program's start.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"

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

// monotonic: CLOCK_MONOTONIC in seconds (Go's own clock readings are not
// comparable across processes).
func monotonic() float64 {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1 /* CLOCK_MONOTONIC */, uintptr(unsafe.Pointer(&ts)), 0)
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

func serve(cni *libcni.CNIConfig) {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) < 5 || f[0] != "add" {
			fmt.Println("error expected: add CONFLIST NETNS_PATH CONTAINER_ID IFNAME [CNI_ARGS]")
			continue
		}
		args := ""
		if len(f) > 5 {
			args = f[5]
		}
		list, err := libcni.ConfListFromFile(f[1])
		if err != nil {
			fmt.Println("error", err)
			continue
		}
		rt := runtimeConf(f[2], f[3], f[4], args)
		t0 := monotonic()
		res, err := cni.AddNetworkList(context.Background(), list, rt)
		t1 := monotonic()
		if err != nil {
			fmt.Println("error", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		b, err := json.Marshal(res)
		if err != nil {
			fmt.Println("error", err)
			continue
		}
		fmt.Printf("ok %.6f %.6f %s\n", t0, t1, b)
	}
}

func main() {
	serving := len(os.Args) == 2 && os.Args[1] == "serve"
	if len(os.Args) < 5 && !serving {
		fmt.Fprintln(os.Stderr, "usage: cni-driver add|check|del CONFLIST NETNS CONTAINER_ID IFNAME [CNI_ARGS]\n       cni-driver bench CONFLIST NETNS_PREFIX COUNT\n       cni-driver serve")
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
	if serving {
		serve(cni)
		return
	}
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
