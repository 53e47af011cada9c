// Package migrations embeds the versioned SQL migrations written by
// ent/migrate/diff.go, with atlas.sum guarding them against edits.
package migrations

import "embed"

// FS holds the migration files and atlas.sum.
//
//go:embed *.sql atlas.sum
var FS embed.FS
