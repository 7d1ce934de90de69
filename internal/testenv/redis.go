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

package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Redis is Debian's redis-server on a loopback port, for the shared rate-limit store
// (--rate-limit-store): nothing persisted, killed and started again on the same port by tests.
type Redis struct {
	// Addr is host:port on loopback; URL is the store URL for --rate-limit-store.
	Addr, URL string
	// LogPath is where its output goes, kept across restarts.
	LogPath string

	bin, dir string
	port     int
	args     []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// RedisServer is the path of redis-server, or "" when it is not installed (tests skip then).
func RedisServer() string {
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return ""
	}
	return p
}

// StartRedis starts redis-server on a free loopback port, its files in dir, with extra args
// (e.g. --requirepass), and waits until it answers.
func StartRedis(dir string, args ...string) (*Redis, error) {
	bin := RedisServer()
	if bin == "" {
		return nil, errors.New("redis-server is not installed (apt-get install redis-server)")
	}
	ports, err := FreePorts(1)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	r := &Redis{Addr: addr, URL: "redis://" + addr + "/0", LogPath: filepath.Join(dir, "redis.log"),
		bin: bin, dir: dir, port: ports[0], args: args}
	return r, r.Start()
}

// Start starts the server (again, after Kill) on its port and waits until it answers.
func (r *Redis) Start() error {
	log, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(r.bin, append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir}, r.args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("starting redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = log.Close(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			out, _ := os.ReadFile(r.LogPath)
			return fmt.Errorf("redis-server exited before it answered; its log: %s", out)
		default:
		}
		if r.ping() == nil {
			return nil
		}
		if time.Now().After(deadline) {
			r.Kill()
			return fmt.Errorf("redis-server did not answer PING on %s within 30s", r.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *Redis) ping() error {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	// NOAUTH: a server with --requirepass answers too.
	if line != "+PONG\r\n" && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}
