package agentapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/ferry-migrate/ferry/discovery"
)

// InventoryLimits bound what one inventory may hold. The server refuses an
// inventory over any of them with 413 naming the field; the agent trims its
// own inventory to them before sending (TrimInventory), so a host with more
// than the limits still reports, with a warning saying what was left out.
// The limits are well above what a real host reports (a busy database
// server has a few thousand connections, dpkg-recognised products a dozen)
// and keep an inventory's decoded size, and the server's work, bounded.
var InventoryLimits = struct {
	Software, BlockDevices, Partitions, Filesystems, NICs, Addresses, VirtioDrivers, Listening, Connections, Warnings int
}{
	Software:      10_000,
	BlockDevices:  1_024,
	Partitions:    256, // per block device
	Filesystems:   1_024,
	NICs:          1_024,
	Addresses:     256, // per NIC
	VirtioDrivers: 64,
	Listening:     10_000,
	Connections:   50_000,
	Warnings:      1_000,
}

// errTooMany refuses a list over its limit.
type errTooMany struct {
	field string
	limit int
}

func (e *errTooMany) Error() string {
	return fmt.Sprintf("%s has more than %d entries; send at most %d", e.field, e.limit, e.limit)
}

// decodeInventory reads an inventory element by element, so a body full of
// tiny list entries is refused at the first entry over the limit instead of
// after decoding all of them, and no list is ever held as raw JSON.
// Scalars and small objects are decoded as they come.
func decodeInventory(r io.Reader) (discovery.Inventory, error) {
	var inv discovery.Inventory
	dec := json.NewDecoder(r)
	if err := expect(dec, json.Delim('{')); err != nil {
		return inv, err
	}
	L := InventoryLimits
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return inv, err
		}
		key, _ := tok.(string)
		switch key {
		case "block_devices":
			err = decodeList(dec, key, L.BlockDevices, &inv.BlockDevices, func(i int, b discovery.BlockDevice) error {
				if len(b.Partitions) > L.Partitions {
					return &errTooMany{fmt.Sprintf("block_devices[%d].partitions", i), L.Partitions}
				}
				return nil
			})
		case "filesystems":
			err = decodeList(dec, key, L.Filesystems, &inv.Filesystems, nil)
		case "nics":
			err = decodeList(dec, key, L.NICs, &inv.NICs, func(i int, n discovery.NIC) error {
				if len(n.Addresses) > L.Addresses {
					return &errTooMany{fmt.Sprintf("nics[%d].addresses", i), L.Addresses}
				}
				return nil
			})
		case "virtio_drivers":
			err = decodeList(dec, key, L.VirtioDrivers, &inv.VirtioDrivers, nil)
		case "software":
			err = decodeList(dec, key, L.Software, &inv.Software, nil)
		case "listening":
			err = decodeList(dec, key, L.Listening, &inv.Listening, nil)
		case "connections":
			err = decodeList(dec, key, L.Connections, &inv.Connections, nil)
		case "warnings":
			err = decodeList(dec, key, L.Warnings, &inv.Warnings, nil)
		default:
			// Any other field is small (or unknown, and skipped).
			err = decodeField(dec, key, &inv)
		}
		if err != nil {
			return inv, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return inv, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return inv, errors.New("trailing data after the inventory")
	}
	return inv, nil
}

// decodeList decodes one JSON array into dst, element by element, refusing
// more than limit elements; check, when set, vets each element.
func decodeList[T any](dec *json.Decoder, field string, limit int, dst *[]T, check func(int, T) error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil // null
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("%s: want an array", field)
	}
	for i := len(*dst); dec.More(); i++ { // a repeated key adds to the same limit
		if i >= limit {
			return &errTooMany{field, limit}
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		if check != nil {
			if err := check(i, v); err != nil {
				return err
			}
		}
		*dst = append(*dst, v)
	}
	_, err = dec.Token()
	return err
}

func expect(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("want %s, found %v", d, tok)
	}
	return nil
}

// bodyError classifies a decoding error for the wire: over the byte cap or
// a list limit is 413, anything else 400.
func bodyError(what string, err error) error {
	var mbe *http.MaxBytesError
	var tm *errTooMany
	switch {
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit)}
	case errors.As(err, &tm):
		return &apiError{http.StatusRequestEntityTooLarge, CodeTooLarge, what + ": " + tm.Error()}
	}
	return invalid("request body is not a valid %s: %v", what, err)
}

// TrimInventory cuts inv's lists to InventoryLimits, keeping the first
// entries, and says in Warnings what was left out. The agent calls it
// before sending, so an unusually large host still reports.
func TrimInventory(inv *discovery.Inventory) {
	L := InventoryLimits
	var notes []string
	trim := func(field string, n, limit int) int {
		if n > limit {
			notes = append(notes, fmt.Sprintf("%s: %d of %d entries sent (the server accepts %d)", field, limit, n, limit))
			return limit
		}
		return n
	}
	inv.Software = inv.Software[:trim("software", len(inv.Software), L.Software)]
	inv.BlockDevices = inv.BlockDevices[:trim("block_devices", len(inv.BlockDevices), L.BlockDevices)]
	for i := range inv.BlockDevices {
		b := &inv.BlockDevices[i]
		b.Partitions = b.Partitions[:trim("block_devices."+b.Name+".partitions", len(b.Partitions), L.Partitions)]
	}
	inv.Filesystems = inv.Filesystems[:trim("filesystems", len(inv.Filesystems), L.Filesystems)]
	inv.NICs = inv.NICs[:trim("nics", len(inv.NICs), L.NICs)]
	for i := range inv.NICs {
		n := &inv.NICs[i]
		n.Addresses = n.Addresses[:trim("nics."+n.Name+".addresses", len(n.Addresses), L.Addresses)]
	}
	inv.VirtioDrivers = inv.VirtioDrivers[:trim("virtio_drivers", len(inv.VirtioDrivers), L.VirtioDrivers)]
	inv.Listening = inv.Listening[:trim("listening", len(inv.Listening), L.Listening)]
	inv.Connections = inv.Connections[:trim("connections", len(inv.Connections), L.Connections)]
	inv.Warnings = inv.Warnings[:min(len(inv.Warnings), max(L.Warnings-len(notes), 0))]
	inv.Warnings = append(inv.Warnings, notes...)
	inv.Warnings = inv.Warnings[:min(len(inv.Warnings), L.Warnings)]
}

// decodeSamples reads a samples batch element by element, refusing more
// than limit samples and connections together.
func decodeSamples(r io.Reader, limit int) (SamplesBatch, error) {
	var b SamplesBatch
	dec := json.NewDecoder(r)
	if err := expect(dec, json.Delim('{')); err != nil {
		return b, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return b, err
		}
		switch key, _ := tok.(string); key {
		case "samples":
			err = decodeList(dec, key, max(limit-len(b.Connections), 0), &b.Samples, nil)
		case "connections":
			err = decodeList(dec, key, max(limit-len(b.Samples), 0), &b.Connections, nil)
		default:
			err = decodeField(dec, key, &b)
		}
		if err != nil {
			var tm *errTooMany
			if errors.As(err, &tm) {
				return b, &errTooMany{"samples and connections", limit}
			}
			return b, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return b, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return b, errors.New("trailing data after the batch")
	}
	return b, nil
}

// decodeField decodes the value of one key onto v as a one-field object,
// so the struct's own JSON rules apply (unknown keys are skipped).
func decodeField(dec *json.Decoder, key string, v any) error {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	k, _ := json.Marshal(key)
	var one bytes.Buffer
	one.WriteByte('{')
	one.Write(k)
	one.WriteByte(':')
	one.Write(raw)
	one.WriteByte('}')
	return json.Unmarshal(one.Bytes(), v)
}
