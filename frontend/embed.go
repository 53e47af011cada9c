// Package frontend embeds the built web UI (frontend/dist) into the ferry
// binary. The Vue sources live beside this file; `npm run build` fills dist.
package frontend

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// FS returns the built UI rooted at dist. It holds only .keep until the UI
// has been built, and the server then serves a placeholder page.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at compile time; this cannot fail
	}
	return sub
}
