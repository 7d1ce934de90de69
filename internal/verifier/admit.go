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

package verifier

import "time"

// What an answer costs, after the decision: the rate-limit budget and the usage count. Both
// live in the APIKey's slot of the store (keyUsage), reached by the key's ownerRef; with a
// shared rate-limit store (--rate-limit-store), the budget lives there (sharedlimits.go).

// answer is a decision after its side effects: what the HTTP edge renders (http.go).
type answer struct {
	decision
	// rate is the bucket's state after this request, when a limit applied to an allowed one.
	rate rateResult
	// at is when the decision was made: the rate-limit headers' instants count from it.
	at time.Time
	// org is the org the request asked for, and access what it may do (read, write,
	// preflight): for the decision log only; "" for a refusal before the request was read.
	org, access string
}

// refusal is the answer to a request refused before any decision about a key (400, 404, 405,
// 503), or by one (its reason only).
func refusal(r reason) answer { return answer{decision: decision{reason: r}} }

// admit carries out a decision at now. A refused request spends nothing and counts nothing. An
// allowed one spends one token from the bucket the decision named, if any (in the shared store
// when there is one); with none left the answer becomes rate_limited (429, with the bucket's
// state for Retry-After), which counts no use either. A request still allowed then counts as
// one use of its APIKey, for the usage flush.
func admit(d decision, store *keyStore, usage *usageTracker, now time.Time) answer {
	a := answer{decision: d, at: now}
	if d.reason != rOK {
		return a
	}
	if d.key.keyID == "" { // an access token no key obtained: its connection's budget
		if d.limited {
			a.rate = store.takeGrant(d.conn.uid, d.limit, now)
			if !a.rate.allowed {
				a.reason = rRateLimited
			}
		}
		return a
	}
	ref := d.key.row.owner
	u := store.usage(ref)
	if d.limited {
		if store.shared != nil {
			a.rate = store.shared.take(store, ref, d.limit, now)
		} else {
			a.rate = store.take(ref, d.limit, now)
		}
		if !a.rate.allowed {
			a.reason = rRateLimited
			return a
		}
	}
	usage.record(ref, u, now)
	return a
}
