package migration

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// Step kinds, and the asynq task type of each ("migration:<kind>"). A task
// names a step row and its generation; everything else is read from the
// database, so redelivery is harmless.
const (
	KindPrepare    = "prepare"
	KindSync       = "sync"
	KindTestLaunch = "test_launch"
	KindCutover    = "cutover"
	KindRollback   = "rollback"
)

// Task types (DESIGN.md §4).
const (
	TypePrepare    = "migration:" + KindPrepare
	TypeSync       = "migration:" + KindSync
	TypeTestLaunch = "migration:" + KindTestLaunch
	TypeCutover    = "migration:" + KindCutover
	TypeRollback   = "migration:" + KindRollback
)

// Types lists every migration task type.
var Types = []string{TypePrepare, TypeSync, TypeTestLaunch, TypeCutover, TypeRollback}

// StepPayload names the step and the generation the task was made for; a
// task whose generation the row has moved past does nothing.
type StepPayload struct {
	StepID     int `json:"step_id"`
	Generation int `json:"generation"`
	// MigrationID is for logs and queue inspection only.
	MigrationID int `json:"migration_id"`
}

// TaskID is the queue's id of a step's task of one generation: at most one
// task per step and generation exists in the queue, whoever enqueues it
// (the step itself, the lifecycle service, the reconciler).
func TaskID(stepID, generation int) string {
	return "step:" + strconv.Itoa(stepID) + ":" + strconv.Itoa(generation)
}

// NewStepTask returns the task that runs the step of kind at its
// generation, not before at (zero: now). Cutover and rollback go to the
// critical queue; a task's timeout is the longest one run of its phases may
// take (launches wait for machines; the sync follower hands over every
// FollowFor).
//
// Issue 11 routes a step to the queue of the node that holds its provider's
// state; that choice is made here and nowhere else.
func NewStepTask(kind string, p StepPayload, at time.Time) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, err
	}
	opts := []asynq.Option{asynq.TaskID(TaskID(p.StepID, p.Generation)), asynq.MaxRetry(10), asynq.Queue(queueOf(kind))}
	switch kind {
	case KindCutover, KindRollback:
		opts = append(opts, asynq.Timeout(6*time.Hour))
	case KindTestLaunch, KindPrepare:
		opts = append(opts, asynq.Timeout(6*time.Hour))
	case KindSync:
		opts = append(opts, asynq.Timeout(2*time.Minute))
	default:
		return nil, nil, fmt.Errorf("unknown migration step kind %q", kind)
	}
	if !at.IsZero() {
		opts = append(opts, asynq.ProcessAt(at))
	}
	return asynq.NewTask("migration:"+kind, b), opts, nil
}

// queueOf is the queue a step kind's tasks go to.
func queueOf(kind string) string {
	if kind == KindCutover || kind == KindRollback {
		return "critical"
	}
	return "default"
}
