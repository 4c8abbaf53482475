// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"

	"github.com/siderolabs/talos/pkg/machinery/config/validation"
)

// runtimeMode is the runtime mode a configuration is validated for. It follows Talos' own modes
// (internal/app/machined/pkg/runtime/mode.go in siderolabs/talos, internal to that module, hence this copy of
// its meaning): metal installs to a disk and does not run in a container, cloud boots an image that is already
// installed, container runs Talos in a container (no install).
type runtimeMode struct {
	name            string
	requiresInstall bool
	inContainer     bool
}

// String returns the mode's name as talosctl spells it.
func (m runtimeMode) String() string { return m.name }

// RequiresInstall reports whether Talos installs itself to a disk in this mode.
func (m runtimeMode) RequiresInstall() bool { return m.requiresInstall }

// InContainer reports whether Talos runs in a container in this mode.
func (m runtimeMode) InContainer() bool { return m.inContainer }

// parseMode returns the mode named as talosctl's --mode flag names it, or an error listing the allowed names.
func parseMode(name string) (validation.RuntimeMode, error) {
	switch name {
	case "metal":
		return runtimeMode{name: name, requiresInstall: true}, nil
	case "cloud":
		return runtimeMode{name: name}, nil
	case "container":
		return runtimeMode{name: name, inContainer: true}, nil
	default:
		return nil, fmt.Errorf("-mode %q: allowed are metal, cloud and container", name)
	}
}
