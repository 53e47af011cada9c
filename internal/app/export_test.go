package app

import "github.com/ferry-migrate/ferry/discovery/importer"

// SetUploadLimits lowers the per-file import caps of POST /api/v1/imports
// for a test and restores them when it ends.
func SetUploadLimits(cleanup func(func()), l importer.Limits) {
	old := uploadLimits
	uploadLimits = l
	cleanup(func() { uploadLimits = old })
}
