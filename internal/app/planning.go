package app

// wirePlanning registers the planning area's task handlers (a.Mux) and routes
// (a.routes); called once from New.
func (a *App) wirePlanning() error {
	return nil
}
