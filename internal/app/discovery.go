package app

// wireDiscovery registers the discovery area's task handlers (a.Mux) and routes
// (a.routes); called once from New.
func (a *App) wireDiscovery() error {
	return nil
}
