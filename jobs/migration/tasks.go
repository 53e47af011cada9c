package migration

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry/jobs"
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
// generation, not before at (zero: now), on any worker. Cutover and
// rollback go to the critical queue; a task's timeout is the longest one
// run of its phases may take (launches wait for machines; the sync follower
// hands over every FollowFor).
func NewStepTask(kind string, p StepPayload, at time.Time) (*asynq.Task, []asynq.Option, error) {
	return NewStepTaskOn("", kind, p, at)
}

// NewStepTaskOn is NewStepTask for the node that holds the migration's
// provider state ("" any worker): its tasks go to that node's queues
// (NodeQueues), which only the process holding the state serves (issue 11).
// The choice of queue is made here and nowhere else.
func NewStepTaskOn(node, kind string, p StepPayload, at time.Time) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, err
	}
	opts := []asynq.Option{asynq.TaskID(TaskID(p.StepID, p.Generation)), asynq.MaxRetry(10), asynq.Queue(QueueOf(node, kind))}
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

// QueueOf is the queue a step kind's tasks go to on node ("" any worker).
func QueueOf(node, kind string) string {
	q := "default"
	if kind == KindCutover || kind == KindRollback {
		q = "critical"
	}
	if node == "" {
		return q
	}
	return "node-" + node + "-" + q
}

// NodeQueues are the queues of node with their weights (those of
// jobs.Queues): the process holding the node's state serves them.
func NodeQueues(node string) map[string]int {
	return map[string]int{QueueOf(node, KindCutover): jobs.Queues["critical"], QueueOf(node, KindSync): jobs.Queues["default"]}
}
