package graph

import (
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
)

func lruCache() *lru.LRU[*ast.QueryDocument] { return lru.New[*ast.QueryDocument](1000) }
