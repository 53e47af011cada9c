package agentapi

import (
	"encoding/json"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
)

// Paths of protocol version 1. Every request but register carries
// "Authorization: Bearer <credential>".
const (
	PathPrefix    = "/agent/v1/"
	PathRegister  = "/agent/v1/register"  // POST RegisterRequest → RegisterResponse
	PathInventory = "/agent/v1/inventory" // POST discovery.Inventory → 204
	PathSamples   = "/agent/v1/samples"   // POST SamplesBatch → 204
	PathHeartbeat = "/agent/v1/heartbeat" // POST Heartbeat → HeartbeatResponse
	PathCommands  = "/agent/v1/commands"  // GET ?wait=<seconds> → CommandsResponse (long-poll)
)

// HostInfo is what an agent says about itself when it registers, so the
// control plane can show the new agent before its first inventory.
type HostInfo struct {
	Hostname     string `json:"hostname"`
	MachineID    string `json:"machine_id,omitempty"`
	BIOSUUID     string `json:"bios_uuid,omitempty"`
	OS           string `json:"os,omitempty"`
	Arch         string `json:"arch,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`
}

// RegisterRequest exchanges a registration token for a credential.
type RegisterRequest struct {
	Token string   `json:"token"`
	Host  HostInfo `json:"host"`
}

// RegisterResponse carries the agent's own identity. The credential is
// shown once; the control plane keeps only its hash.
type RegisterResponse struct {
	AgentID    string `json:"agent_id"`
	TenantID   string `json:"tenant_id"`
	Credential string `json:"credential"`
}

// SamplesBatch is a batch of utilisation samples and connection
// observations. BatchID is chosen by the agent and stays the same across
// retries, so a Store can drop a batch it already saved when only the
// response was lost.
type SamplesBatch struct {
	BatchID     string                        `json:"batch_id"`
	Samples     []discovery.UtilisationSample `json:"samples"`
	Connections []discovery.Connection        `json:"connections,omitempty"`
	ObservedAt  time.Time                     `json:"observed_at"`
}

// Heartbeat says the agent is alive and how it is doing.
type Heartbeat struct {
	AgentVersion    string    `json:"agent_version"`
	SentAt          time.Time `json:"sent_at"`
	BufferedBatches int       `json:"buffered_batches"`
	BufferedBytes   int64     `json:"buffered_bytes"`
}

// HeartbeatResponse tells the agent the server's clock and when to beat
// next, so the control plane can spread load without redeploying agents.
type HeartbeatResponse struct {
	ServerTime      time.Time `json:"server_time"`
	IntervalSeconds int       `json:"interval_seconds"`
}

// Command is work the control plane asks the agent to do (collect an
// inventory now, start replication …). Payload is the command's own JSON.
type Command struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Command types the discovery agent itself understands.
const (
	CommandCollectInventory = "collect_inventory"
)

// CommandsResponse answers a long-poll; empty when the wait ran out.
type CommandsResponse struct {
	Commands []Command `json:"commands"`
}

// Error codes in error bodies: {"error":{"code":..., "message":...}}.
const (
	CodeInvalid         = "invalid"
	CodeTooLarge        = "too_large"
	CodeUnauthenticated = "unauthenticated"
	CodeTokenMalformed  = "token_malformed"
	CodeTokenForged     = "token_forged"
	CodeTokenExpired    = "token_expired"
	CodeTokenExhausted  = "token_exhausted"
	CodeTokenRevoked    = "token_revoked"
	CodeBusy            = "busy" // 503 with Retry-After: send again then
	CodeInternal        = "internal"
	CodeSuspended       = "tenant_suspended"
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}
