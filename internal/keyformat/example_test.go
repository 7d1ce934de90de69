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

package keyformat_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"

	"github.com/clearance-dev/clearance/internal/keyformat"
)

func Example() {
	f, err := keyformat.New(keyformat.DefaultPrefix)
	if err != nil {
		log.Fatal(err)
	}
	// Production code calls f.Generate(); a fixed reader keeps the output stable.
	key, err := f.GenerateFrom(bytes.NewReader(make([]byte, 41)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deliver:", key.Token)
	fmt.Println("display:", key) // a Key prints as its mask
	fmt.Println("look up:", key.KeyID)

	stored := keyformat.Hash(key.Token)
	presented, err := f.Parse(key.Token)
	fmt.Println("accepted:", err == nil && keyformat.Verify(presented.Token, stored))

	mistyped := key.Token[:20] + "1" + key.Token[21:]
	_, err = f.Parse(mistyped)
	fmt.Println("mistyped refused:", errors.Is(err, keyformat.ErrChecksum))
	// Output:
	// deliver: clr_000000000000_00000000000000000000000000000000000000000001arNpU
	// display: clr_0000…rNpU
	// look up: 000000000000
	// accepted: true
	// mistyped refused: true
}
