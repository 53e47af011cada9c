package app_test

import (
	"bytes"
	"encoding/csv"
)

func csvReader(b []byte) *csv.Reader { return csv.NewReader(bytes.NewReader(b)) }
