package app

import (
	"context"

	"github.com/ferry-migrate/ferry/jobs"
)

// wirePlanning registers the planning area's task handlers (a.Mux) and routes
// (a.routes); called once from New. It also re-enqueues plans the database
// says are queued or running (the reconciler's start-up pass): the embedded
// queue keeps nothing across restarts.
func (a *App) wirePlanning() error {
	(&jobs.Planning{Client: a.DB.Client, Now: a.Config.Now, Log: a.Log}).Register(a.Mux)
	n, err := jobs.ReconcilePlans(context.Background(), a.DB.Client, a.Queue)
	if err != nil {
		return err
	}
	if n > 0 {
		a.Log.Info("re-enqueued unfinished plans", "count", n)
	}
	return nil
}
