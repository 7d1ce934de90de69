/*
Copyright 2026 The Clearance Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// cpuTimes is CPU seconds (user+system) of this process and each of its children by name
// (kube-apiserver, etcd, clearance): where a phase's time went.
func cpuTimes() map[string]float64 {
	out := map[string]float64{}
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces, so split after ')'.
		s := string(data)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		comm := s[strings.IndexByte(s, '(')+1 : end]
		f := strings.Fields(s[end+1:])
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if pid != self && ppid != self {
			continue
		}
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		name := comm
		if pid == self {
			name = "bench"
		}
		out[name] += (utime + stime) / 100 // USER_HZ is 100 on Linux
	}
	return out
}

// cpuSince formats the CPU seconds each process spent since before.
func cpuSince(before map[string]float64) string {
	spent := map[string]float64{}
	cpuAdd(spent, before)
	return cpuText(spent)
}

// cpuAdd adds to acc the CPU seconds each process spent since before.
func cpuAdd(acc, before map[string]float64) {
	for n, v := range cpuTimes() {
		acc[n] += v - before[n]
	}
}

// cpuText formats CPU seconds by process.
func cpuText(spent map[string]float64) string {
	names := make([]string, 0, len(spent))
	for n := range spent {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.1fs", n, spent[n]))
	}
	return strings.Join(parts, ", ")
}
