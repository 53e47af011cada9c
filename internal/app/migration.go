package app

// wireMigration registers the migration area's task handlers (a.Mux) and routes
// (a.routes); called once from New.
func (a *App) wireMigration() error {
	return nil
}
