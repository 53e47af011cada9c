// Package ent is generated from ent/schema by entc.go; never edit it by hand.
package ent

//go:generate go run entc.go
