//go:build tools

// Package tools pins GoBGP's daemon and CLI, the BGP speaker Talos embeds (its BGPInstanceConfig runs GoBGP in
// machined), so `go mod tidy` keeps their dependencies. The virtual appliance runs the node's BGP with them.
package tools

import (
	_ "github.com/osrg/gobgp/v4/cmd/gobgp"
	_ "github.com/osrg/gobgp/v4/cmd/gobgpd"
)
