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
	"reflect"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/clearance-dev/clearance/internal/watches"
)

// Blinder sits between an informer and the apiserver, as a partition would: Blind cuts the
// informer's open watch and holds its next one until See, which then refuses it as too old (410
// Gone, what the apiserver answers for a resource version it no longer holds, after a long
// partition or an apiserver restart), so the informer lists again. Lists pass through untouched.
type Blinder struct {
	toolscache.ListerWatcher

	mu     sync.Mutex
	light  chan struct{} // closed while watches may open
	cut    chan struct{} // closed to end the watches open now
	expire bool          // the next watch is refused as too old
	held   chan struct{} // receives when a watch is held
}

// NewBlinder wraps lw; its watches may open until Blind.
func NewBlinder(lw toolscache.ListerWatcher) *Blinder {
	light := make(chan struct{})
	close(light)
	return &Blinder{ListerWatcher: lw, light: light, cut: make(chan struct{}), held: make(chan struct{}, 1)}
}

// Blind cuts the watches open now and holds the next ones until See.
func (b *Blinder) Blind() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.light = make(chan struct{})
	close(b.cut)
	b.cut = make(chan struct{})
}

// See lets the held watch go on, refused as too old, so the informer lists again.
func (b *Blinder) See() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire = true
	close(b.light)
}

// Watch opens lw's watch unless the Blinder holds it.
func (b *Blinder) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	b.mu.Lock()
	light, cut := b.light, b.cut
	b.mu.Unlock()
	select {
	case <-light:
	default:
		select {
		case b.held <- struct{}{}:
		default:
		}
		<-light
	}
	b.mu.Lock()
	expire := b.expire
	b.expire = false
	b.mu.Unlock()
	if expire {
		return nil, apierrors.NewResourceExpired("too old resource version: " + opts.ResourceVersion)
	}
	w, err := b.ListerWatcher.Watch(opts)
	if err != nil {
		return nil, err
	}
	return cutWatch(w, cut), nil
}

// cutWatch forwards w's events until cut is closed or the reader stops it.
func cutWatch(w watch.Interface, cut <-chan struct{}) watch.Interface {
	out := make(chan watch.Event)
	stop := make(chan struct{})
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case e, ok := <-w.ResultChan():
				if !ok {
					return
				}
				select {
				case out <- e:
				case <-cut:
					return
				case <-stop:
					return
				}
			case <-cut:
				return
			case <-stop:
				return
			}
		}
	}()
	c := &cutting{out: out}
	c.stop = func() { c.once.Do(func() { close(stop) }) }
	return c
}

type cutting struct {
	out  chan watch.Event
	once sync.Once
	stop func()
}

func (c *cutting) ResultChan() <-chan watch.Event { return c.out }
func (c *cutting) Stop()                          { c.stop() }

// Held receives once the informer, its watch cut, has come back to watch and is being held:
// from then on it sees nothing until See.
func (b *Blinder) Held() <-chan struct{} { return b.held }

// Blinders makes a manager's informers blindable, each through a Blinder of its own: use
// NewInformer as cache.Options.NewInformer (the informers are package watches', as the
// operator's and the verifier's are), and For to reach a kind's Blinder once the manager has
// made its informer.
type Blinders struct {
	Clock clock.Clock

	mu sync.Mutex
	of map[reflect.Type]*Blinder
}

// NewInformer is for cache.Options.NewInformer.
func (bs *Blinders) NewInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, ix toolscache.Indexers) toolscache.SharedIndexInformer {
	b := NewBlinder(lw)
	bs.mu.Lock()
	if bs.of == nil {
		bs.of = map[reflect.Type]*Blinder{}
	}
	bs.of[reflect.TypeOf(obj)] = b
	bs.mu.Unlock()
	return watches.NewInformerFunc(bs.Clock)(b, obj, resync, ix)
}

// For is the Blinder of obj's kind, nil before the manager made its informer.
func (bs *Blinders) For(obj runtime.Object) *Blinder {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.of[reflect.TypeOf(obj)]
}
