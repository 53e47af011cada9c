// Package i18n holds the domain texts Ferry's core produces (assessment
// reasons and actions, plan reasons, wave names) as codes with parameters,
// and their templates in every language the product speaks. The API returns
// the codes; the UI translates them with the same catalogs (it imports the
// JSON files), and the reports render them here, so a text exists once per
// language.
//
// Templates use vue-i18n's named placeholders: "{os} reached end of life on
// {date}". The catalogs are flat maps from code to template.
package i18n

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

//go:embed en.json
var enJSON []byte

//go:embed zh-CN.json
var zhJSON []byte

// Languages are the languages of the catalogs; the first is the default.
var Languages = []string{"en", "zh-CN"}

var catalogs = func() map[string]map[string]string {
	out := map[string]map[string]string{}
	for lang, b := range map[string][]byte{"en": enJSON, "zh-CN": zhJSON} {
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			panic(fmt.Sprintf("i18n/%s.json: %v", lang, err))
		}
		out[lang] = m
	}
	return out
}()

// Msg is one domain text: a code and its parameters. Params values are
// strings or numbers; they are shown as they are (names, sizes, dates).
type Msg struct {
	Code   string         `json:"code"`
	Params map[string]any `json:"params,omitempty"`
}

// M builds a Msg from a code and key/value pairs.
func M(code string, kv ...any) Msg {
	m := Msg{Code: code}
	for i := 0; i+1 < len(kv); i += 2 {
		if m.Params == nil {
			m.Params = map[string]any{}
		}
		m.Params[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return m
}

// String is the English text.
func (m Msg) String() string { return m.Text("en") }

var placeholder = regexp.MustCompile(`\{(\w+)\}`)

// Text renders m in lang (en when lang is unknown, the code itself when no
// catalog has it, so an unknown code is visible rather than blank).
func (m Msg) Text(lang string) string {
	tpl, ok := catalogs[Normalize(lang)][m.Code]
	if !ok {
		if tpl, ok = catalogs["en"][m.Code]; !ok {
			return m.Code
		}
	}
	return placeholder.ReplaceAllStringFunc(tpl, func(s string) string {
		k := s[1 : len(s)-1]
		if v, ok := m.Params[k]; ok {
			return param(lang, v)
		}
		return s
	})
}

// param renders one parameter: a nested message (a Msg, or its JSON form
// {code, params} read back from the database) in the same language, a list
// of them joined by ", ", anything else as it is. Nesting lets a text be
// built from other texts (a plan reason names the rule that set it) and
// still be translated whole.
func param(lang string, v any) string {
	switch x := v.(type) {
	case Msg:
		return x.Text(lang)
	case []Msg:
		return strings.Join(Texts(lang, x), ", ")
	case map[string]any:
		if code, ok := x["code"].(string); ok {
			ps, _ := x["params"].(map[string]any)
			return Msg{Code: code, Params: ps}.Text(lang)
		}
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = param(lang, e)
		}
		return strings.Join(out, ", ")
	}
	return fmt.Sprint(v)
}

// Normalize maps a language tag to a catalog: zh, zh-CN, zh-Hans… → zh-CN;
// anything else → en.
func Normalize(lang string) string {
	if strings.HasPrefix(strings.ToLower(lang), "zh") {
		return "zh-CN"
	}
	return "en"
}

// Has reports whether code has a template in every language.
func Has(code string) bool {
	for _, l := range Languages {
		if _, ok := catalogs[l][code]; !ok {
			return false
		}
	}
	return true
}

// Template is the raw template of code in lang ("" when there is none).
func Template(lang, code string) string { return catalogs[Normalize(lang)][code] }

// Codes lists the codes of a language's catalog, sorted.
func Codes(lang string) []string {
	var out []string
	for k := range catalogs[lang] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Texts renders a list of messages in lang.
func Texts(lang string, ms []Msg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text(lang)
	}
	return out
}

// Finding is a Msg with its kind, as an assessment stores it: reason (why
// a host cannot move), action (what to do first), missing (data needed to
// decide) or note (how a figure was reached).
type Finding struct {
	Kind   string         `json:"kind"`
	Code   string         `json:"code"`
	Params map[string]any `json:"params,omitempty"`
}

// Finding kinds.
const (
	Reason  = "reason"
	Action  = "action"
	Missing = "missing"
	Note    = "note"
)

// Msg is the finding's text.
func (f Finding) Msg() Msg { return Msg{Code: f.Code, Params: f.Params} }

// Of returns the findings of one kind.
func Of(fs []Finding, kind string) []Msg {
	var out []Msg
	for _, f := range fs {
		if f.Kind == kind {
			out = append(out, f.Msg())
		}
	}
	return out
}
