package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// operatorProc is one operator process the bench started.
type operatorProc struct {
	cmd         *exec.Cmd
	log         string
	metricsAddr string
	pprofAddr   string
}

// startOperator starts an operator watching ns, with its metrics and pprof
// endpoints on ports of their own.
func (b *bench) startOperator(ns string, sync time.Duration, args ...string) (*operatorProc, error) {
	log := filepath.Join(b.logDir, "bench-operator-"+ns+".log")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b.nextPort += 2
	p := &operatorProc{log: log, metricsAddr: fmt.Sprintf("127.0.0.1:%d", b.nextPort), pprofAddr: fmt.Sprintf("127.0.0.1:%d", b.nextPort+1)}
	all := []string{"--cluster-name=bench", "--watch-namespaces=" + ns, "--sync-period=" + sync.String(),
		"--metrics-bind-address=" + p.metricsAddr, "--pprof-bind-address=" + p.pprofAddr,
		"--health-probe-bind-address=0", "--zap-log-level=error"}
	if b.opts.workers > 0 {
		all = append(all, fmt.Sprintf("--max-concurrent-reconciles=%d", b.opts.workers))
	}
	all = append(append(all, b.opts.extraOperArg...), args...)
	p.cmd = exec.Command(b.operator, all...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// usage is the operator's peak resident memory (VmHWM) and CPU time so far.
func (p *operatorProc) usage() (rssMiB, cpuSec float64) {
	pid := strconv.Itoa(p.cmd.Process.Pid)
	if status, err := os.ReadFile("/proc/" + pid + "/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				rssMiB = kb / 1024
			}
		}
	}
	if stat, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
		// Fields after the command name (which may hold spaces): utime and
		// stime are the 14th and 15th fields, in clock ticks of 1/100 s.
		rest := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		if len(rest) > 12 {
			u, _ := strconv.ParseFloat(rest[11], 64)
			s, _ := strconv.ParseFloat(rest[12], 64)
			cpuSec = (u + s) / 100
		}
	}
	return rssMiB, cpuSec
}

// apiRequests is what the operator sent to the Kubernetes API server, from
// client-go's rest_client_requests_total: writes (PATCH and PUT) and events
// (POST: the operator creates nothing else).
func (p *operatorProc) apiRequests() (writes, events float64) {
	resp, err := http.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		switch {
		case strings.Contains(line, `method="PATCH"`), strings.Contains(line, `method="PUT"`):
			writes += v
		case strings.Contains(line, `method="POST"`):
			events += v
		}
	}
	return writes, events
}

// heapTop is the top entries of the operator's in-use heap profile.
func (p *operatorProc) heapTop(n int) string {
	resp, err := http.Get("http://" + p.pprofAddr + "/debug/pprof/heap")
	if err != nil {
		return "heap profile: " + err.Error()
	}
	defer resp.Body.Close()
	f, err := os.CreateTemp("", "bench-heap-*.pb.gz")
	if err != nil {
		return err.Error()
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, resp.Body); err != nil {
		return err.Error()
	}
	f.Close()
	out, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=inuse_space", fmt.Sprintf("-nodecount=%d", n), f.Name()).CombinedOutput()
	if err != nil {
		return "pprof: " + err.Error() + ": " + string(out)
	}
	return string(out)
}

func (p *operatorProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}
