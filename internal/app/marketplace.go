package app

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/internal/marketplace"
)

// wireMarketplace mounts the marketplace adapter (/api/{action}) and SPI
// (/marketplace/spi) on the same GraphQL handler that serves /graphql.
func (a *App) wireMarketplace(gql http.Handler) {
	cfg := a.Config.Marketplace
	h := marketplace.New(marketplace.Config{
		Client: a.DB.Client, GraphQL: gql, ISVKey: cfg.ISVKey, TokenKey: []byte(cfg.TokenKey), Redis: a.throttleDB,
		StartSession: func(w http.ResponseWriter, r *http.Request, u *ent.User, action string, details map[string]any) (string, error) {
			return a.Web.StartSession(w, r, u, action, details)
		},
		PublicURL: a.Config.PublicURL, ReleaseAfter: cfg.ReleaseAfter, Now: a.Config.Now, Log: a.Log,
	})
	a.routes = append(a.routes, func(r chi.Router) { h.Routes(r) })
}
