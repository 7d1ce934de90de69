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

package plugin

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	v1 "github.com/clearance-dev/clearance/api/v1alpha1"
)

// row is one line of a table; namespace is shown only with --all-namespaces.
type row struct {
	namespace string
	cells     []string
}

// listing is a list command's result: the objects for -o json|yaml, the rows for a table.
type listing struct {
	list   client.ObjectList
	all    bool
	header []string
	rows   []row
}

// printList prints a listing as a table, or the list object as json or yaml. An empty table
// says so on stderr, as kubectl does, so stdout stays parseable.
func (o *Options) printList(s *session, l listing) error {
	if o.structured() {
		return o.printObject(l.list)
	}
	if len(l.rows) == 0 {
		if l.all {
			o.note("No resources found")
		} else {
			o.note("No resources found in %s namespace.", s.namespace)
		}
		return nil
	}
	header := l.header
	if l.all {
		header = append([]string{"NAMESPACE"}, header...)
	}
	rows := make([][]string, 0, len(l.rows))
	for _, r := range l.rows {
		if l.all {
			rows = append(rows, append([]string{r.namespace}, r.cells...))
		} else {
			rows = append(rows, r.cells)
		}
	}
	return o.printTable(header, rows)
}

// printTable aligns columns with the same padding as kubectl's tables.
func (o *Options) printTable(header []string, rows [][]string) error {
	w := tabwriter.NewWriter(o.out(), 6, 4, 3, ' ', 0)
	fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}

// printObject prints an object (or list) as json or yaml, with apiVersion and kind filled in
// so the output can be applied or fed to jq like kubectl's.
func (o *Options) printObject(obj any) error {
	if ro, ok := obj.(runtime.Object); ok {
		o.setKinds(ro)
	}
	var data []byte
	var err error
	if o.output == "yaml" {
		data, err = yaml.Marshal(obj)
	} else {
		data, err = json.MarshalIndent(obj, "", "    ")
		data = append(data, '\n')
	}
	if err != nil {
		return err
	}
	_, err = o.out().Write(data)
	return err
}

// setKinds fills apiVersion and kind on an object and on each item of a list; typed clients
// leave them empty.
func (o *Options) setKinds(obj runtime.Object) {
	setKind := func(obj runtime.Object) {
		if gvk, err := apiutil.GVKForObject(obj, o.scheme); err == nil {
			obj.GetObjectKind().SetGroupVersionKind(gvk)
		}
	}
	setKind(obj)
	if meta.IsListType(obj) {
		_ = meta.EachListItem(obj, func(item runtime.Object) error {
			setKind(item)
			return nil
		})
	}
}

// listFlags are the scope flags of list commands.
type listFlags struct{ allNamespaces bool }

func (f *listFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "List in every namespace you may read, not only the current one")
}

// scope is the namespace a list runs in ("" for all) and its list options.
func (f *listFlags) scope(s *session) (string, []client.ListOption) {
	if f.allNamespaces {
		return "", nil
	}
	return s.namespace, []client.ListOption{client.InNamespace(s.namespace)}
}

// ready is the status of the Ready condition, or "" before the operator has reported.
func ready(conditions []metav1.Condition) string {
	if c := meta.FindStatusCondition(conditions, v1.ConditionReady); c != nil {
		return string(c.Status)
	}
	return ""
}

// readyMessage is the Ready condition's reason and message, for explaining a wait.
func readyMessage(conditions []metav1.Condition) string {
	c := meta.FindStatusCondition(conditions, v1.ConditionReady)
	if c == nil {
		return "no Ready condition yet"
	}
	if c.Message == "" {
		return c.Reason
	}
	return c.Reason + ": " + c.Message
}

// ago is a kubectl-style age ("5m") of t, or "" when unset.
func (o *Options) ago(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return duration.HumanDuration(o.Clock.Since(t.Time))
}

// timestamp is t in RFC 3339, or "" when unset.
func timestamp(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func itoa[T ~int32 | ~int64 | ~int](n T) string { return strconv.FormatInt(int64(n), 10) }
