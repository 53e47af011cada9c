//go:build tools

// Package ferry pins the modules the project builds with, so that go.mod
// lists them even before every package that imports them exists.
package ferry

import (
	_ "ariga.io/atlas/sql/migrate"
	_ "entgo.io/contrib/entgql"
	_ "entgo.io/ent"
	_ "entgo.io/ent/dialect/sql/schema"
	_ "entgo.io/ent/entc"
	_ "entgo.io/ent/entc/gen"
	_ "github.com/99designs/gqlgen"
	_ "github.com/99designs/gqlgen/client"
	_ "github.com/99designs/gqlgen/graphql/handler"
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	_ "github.com/go-chi/chi/v5"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/google/uuid"
	_ "github.com/hibiken/asynq"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/mattn/go-sqlite3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/spf13/cobra"
	_ "github.com/vektah/gqlparser/v2"
	_ "github.com/vmware/govmomi"
	_ "github.com/vmware/govmomi/simulator"
	_ "github.com/xuri/excelize/v2"
	_ "github.com/zeebo/blake3"
	_ "github.com/zeebo/xxh3"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/time/rate"
	_ "gopkg.in/yaml.v3"
)
