package cloud

import (
	"fmt"
	"sort"
)

// Settings turns a cloud account row's settings (JSON) into
// Account.Settings: every value as its text.
func Settings(m map[string]any) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case nil:
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// CheckSettings refuses settings an account cannot carry: more than 32, a
// key longer than 64 characters or a value longer than 2048, or a value
// that is not text. Secrets never go here (Account.Secret does).
func CheckSettings(m map[string]any) error {
	if len(m) > 32 {
		return fmt.Errorf("%d settings: at most 32: %w", len(m), ErrInvalid)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || len(k) > 64 {
			return fmt.Errorf("setting %q: a key of 1–64 characters: %w", k, ErrInvalid)
		}
		s, ok := m[k].(string)
		if !ok {
			return fmt.Errorf("setting %s: the value must be text: %w", k, ErrInvalid)
		}
		if len(s) > 2048 {
			return fmt.Errorf("setting %s: %d characters, at most 2048: %w", k, len(s), ErrInvalid)
		}
	}
	return nil
}
