// SPDX-License-Identifier: Apache-2.0

// Command talos-validate checks Talos machine configurations with Talos' own code (pkg/machinery), as
// `talosctl validate --mode metal --strict` does: the multi-document stream is decoded by configloader (unknown
// keys, duplicate documents and malformed values fail here), then validated client-side
// (Container.ValidateAsClient with validation.WithStrict()).
//
// Usage:
//
//	talos-validate [-mode metal|cloud|container] [-0] [FILE...]
//
// Each FILE is one configuration; with no FILE, standard input is one configuration, or with -0 a sequence of
// configurations separated by NUL bytes (so hundreds are checked in one process).
//
// Output, one JSON object per line on stdout:
//
//	{"config":"<file, stdin or #N>","severity":"error"|"warning","kind":"VLANConfig","name":"lan0.10","message":"…"}
//	{"config":"…","result":"valid"|"invalid","documents":N,"errors":N,"warnings":N}
//
// A finding that Talos reports for the configuration as a whole has no kind. Every configuration ends with a
// result line. The exit status is 0 when every configuration is valid, 1 when any has an error, 2 on a usage or
// read error.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/siderolabs/talos/pkg/machinery/config"
	docconfig "github.com/siderolabs/talos/pkg/machinery/config/config"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/types/v1alpha1"
	"github.com/siderolabs/talos/pkg/machinery/config/validation"
)

// finding is one error or warning about a configuration.
type finding struct {
	Config   string `json:"config"`
	Severity string `json:"severity"`
	Kind     string `json:"kind,omitempty"`
	Name     string `json:"name,omitempty"`
	Message  string `json:"message"`
}

// result closes the output of one configuration.
type result struct {
	Config    string `json:"config"`
	Result    string `json:"result"`
	Documents int    `json:"documents"`
	Errors    int    `json:"errors"`
	Warnings  int    `json:"warnings"`
}

// input is one configuration to check and the label its findings carry.
type input struct {
	label string
	data  []byte
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run parses the command line, checks every configuration and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("talos-validate", flag.ContinueOnError)
	flags.SetOutput(stderr)
	modeName := flags.String("mode", "metal", "runtime mode to validate for: metal, cloud or container")
	nulSeparated := flags.Bool("0", false, "standard input holds configurations separated by NUL bytes")

	if err := flags.Parse(args); err != nil {
		return 2
	}

	mode, err := parseMode(*modeName)
	if err != nil {
		fmt.Fprintln(stderr, err)

		return 2
	}

	inputs, err := readInputs(flags.Args(), stdin, *nulSeparated)
	if err != nil {
		fmt.Fprintln(stderr, err)

		return 2
	}

	out := bufio.NewWriter(stdout)
	defer out.Flush() //nolint:errcheck

	enc := json.NewEncoder(out)
	status := 0

	for _, in := range inputs {
		findings, documents := check(in, mode)
		res := result{Config: in.label, Result: "valid", Documents: documents}

		for _, f := range findings {
			if f.Severity == "error" {
				res.Errors++
			} else {
				res.Warnings++
			}

			if err := enc.Encode(f); err != nil {
				fmt.Fprintln(stderr, err)

				return 2
			}
		}

		if res.Errors > 0 {
			res.Result = "invalid"
			status = 1
		}

		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, err)

			return 2
		}
	}

	return status
}

// readInputs returns the configurations named on the command line, or those on standard input: one, or
// several separated by NUL bytes. Empty NUL-separated chunks (a trailing separator) are skipped.
func readInputs(files []string, stdin io.Reader, nulSeparated bool) ([]input, error) {
	if len(files) > 0 {
		inputs := make([]input, 0, len(files))

		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				return nil, err
			}

			inputs = append(inputs, input{label: name, data: data})
		}

		return inputs, nil
	}

	data, err := io.ReadAll(stdin)
	if err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}

	if !nulSeparated {
		return []input{{label: "stdin", data: data}}, nil
	}

	var inputs []input

	for i, chunk := range bytes.Split(data, []byte{0}) {
		if len(bytes.TrimSpace(chunk)) == 0 {
			continue
		}

		inputs = append(inputs, input{label: fmt.Sprintf("#%d", i), data: chunk})
	}

	return inputs, nil
}

// check loads one configuration as Talos does and validates it client-side in strict mode. It returns every
// finding (a load failure is one error) and the number of documents loaded.
func check(in input, mode validation.RuntimeMode) ([]finding, int) {
	provider, err := configloader.NewFromBytes(in.data)
	if err != nil {
		return []finding{{Config: in.label, Severity: "error", Message: "loading: " + err.Error()}}, 0
	}

	docs := indexDocuments(provider, mode)
	warnings, err := provider.ValidateAsClient(mode, validation.WithStrict())
	findings := make([]finding, 0, len(warnings))

	for _, w := range warnings {
		ref := docs.warner(w)
		findings = append(findings, finding{Config: in.label, Severity: "warning", Kind: ref.kind, Name: ref.name, Message: w})
	}

	for _, top := range flatten(err) {
		ref, inner := docs.wrapperOf(top)

		for _, e := range flatten(inner) {
			findings = append(findings, finding{
				Config: in.label, Severity: "error", Kind: ref.kind, Name: ref.name, Message: e.Error(),
			})
		}
	}

	return findings, len(provider.Documents())
}

// docRef names a document: its kind and, for a named document, its name.
type docRef struct{ kind, name string }

// documents knows how Talos labels the documents of one configuration in its findings.
type documents struct {
	// byID maps the prefix Talos puts before a document's errors to the document.
	byID map[string]docRef
	// warnedBy maps a warning to the documents whose own validation gives it, in stream order.
	warnedBy map[string][]docRef
}

// indexDocuments lists the documents of a configuration with the prefix Talos wraps their errors in
// ("<Kind>[/<name>]", pkg/machinery/config/container/validate.go docID; "v1alpha1.Config" for the legacy
// document), and validates each document alone to learn which one a warning comes from (the container passes
// a document's warnings on without naming it).
func indexDocuments(provider config.Provider, mode validation.RuntimeMode) documents {
	docs := documents{byID: map[string]docRef{"v1alpha1.Config": {kind: "v1alpha1"}}, warnedBy: map[string][]docRef{}}

	for _, doc := range provider.Documents() {
		ref := docRef{kind: doc.Kind()}
		id := ref.kind

		if named, ok := doc.(docconfig.NamedDocument); ok {
			ref.name = named.Name()
			id += "/" + ref.name
		}

		if _, legacy := doc.(*v1alpha1.Config); legacy {
			ref = docRef{kind: "v1alpha1"}
		} else {
			docs.byID[id] = ref
		}

		if v, ok := doc.(docconfig.Validator); ok {
			warnings, _ := v.Validate(mode, validation.WithStrict()) //nolint:errcheck // only its warnings are wanted here

			for _, w := range warnings {
				docs.warnedBy[w] = append(docs.warnedBy[w], ref)
			}
		}
	}

	return docs
}

// warner returns the document that gave a warning and forgets it: Talos collects the documents' warnings in
// stream order, so the n-th copy of a warning text comes from the n-th document giving it. A warning no
// document gives alone concerns the whole stream.
func (d documents) warner(warning string) docRef {
	refs := d.warnedBy[warning]
	if len(refs) == 0 {
		return docRef{}
	}

	d.warnedBy[warning] = refs[1:]

	return refs[0]
}

// wrapperOf returns the document a top-level validation error belongs to and the errors it wraps, or no
// document and the error itself when it concerns the whole stream.
func (d documents) wrapperOf(top error) (docRef, error) {
	id, _, found := strings.Cut(top.Error(), ": ")
	if !found {
		return docRef{}, top
	}

	ref, known := d.byID[id]
	if !known {
		return docRef{}, top
	}

	if w, ok := top.(interface{ Unwrap() error }); ok && w.Unwrap() != nil {
		return ref, w.Unwrap()
	}

	return docRef{}, top
}

// flatten returns the leaves of an error tree built with hashicorp/go-multierror or errors.Join; an error
// that aggregates nothing is its own single leaf.
func flatten(err error) []error {
	if err == nil {
		return nil
	}

	var children []error

	switch e := err.(type) {
	case interface{ WrappedErrors() []error }:
		children = e.WrappedErrors()
	case interface{ Unwrap() []error }:
		children = e.Unwrap()
	default:
		return []error{err}
	}

	var leaves []error

	for _, c := range children {
		leaves = append(leaves, flatten(c)...)
	}

	return leaves
}
