package graph

import (
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
)

// queryCacheSize bounds the parsed, validated documents kept between
// requests. A document the limits allow takes up to ≈ 130 KiB parsed (500
// fields at ≈ 220 bytes each, plus its 16 KiB of text), so 256 of them stay
// under ≈ 32 MiB however many distinct documents clients send; the UI ships 43.
const queryCacheSize = 256

func lruCache() *lru.LRU[*ast.QueryDocument] { return lru.New[*ast.QueryDocument](queryCacheSize) }
