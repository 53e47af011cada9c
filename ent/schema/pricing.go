package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// PriceCatalog is a price list a user imported (`ferry catalog import`) for
// a target cloud; the newest of a tenant and target replaces the catalog
// built into the binary in assessments. Read through the API only as its
// summary (priceCatalog).
type PriceCatalog struct{ ent.Schema }

func (PriceCatalog) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

func (PriceCatalog) Fields() []ent.Field {
	return []ent.Field{
		field.String("target").NotEmpty(),
		field.String("source").Default("").MaxLen(2000),
		// date is the day the prices were taken (YYYY-MM-DD).
		field.String("date").NotEmpty(),
		field.String("currency").Default("USD"),
		// catalog is the whole price list (assess.Catalog as JSON).
		field.Text("catalog"),
		field.Int("types").Default(0),
		field.String("imported_by").Default(""),
	}
}

func (PriceCatalog) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
