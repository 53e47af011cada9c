// Package migrations embeds the versioned SQL migrations written by
// ent/migrate/diff.go, one directory per database (sqlite, postgres), each
// with its atlas.sum guarding it against edits.
package migrations

import "embed"

// FS holds sqlite/ and postgres/: the migration files and atlas.sum of each.
//
//go:embed sqlite/*.sql sqlite/atlas.sum postgres/*.sql postgres/atlas.sum
var FS embed.FS
