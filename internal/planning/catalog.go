package planning

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/pricecatalog"
	"github.com/ferry-migrate/ferry/planner/assess"
)

// LoadCatalog returns the price list assessments of target use in the
// viewer's tenant: the newest one the tenant imported, else the catalog
// built into the binary (row nil).
func LoadCatalog(ctx context.Context, c *ent.Client, target string) (*assess.Catalog, *ent.PriceCatalog, error) {
	row, err := c.PriceCatalog.Query().Where(pricecatalog.Target(target)).
		Order(ent.Desc(pricecatalog.FieldCreatedAt), ent.Desc(pricecatalog.FieldID)).First(ctx)
	if ent.IsNotFound(err) {
		cat, err := assess.DefaultCatalog()
		return cat, nil, err
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load price catalog: %w", err)
	}
	var cat assess.Catalog
	if err := json.Unmarshal([]byte(row.Catalog), &cat); err != nil {
		return nil, nil, fmt.Errorf("price catalog %d: %w", row.ID, err)
	}
	return &cat, row, nil
}

// ImportCatalog stores cat as the tenant's price list for its target; the
// next assessment uses it.
func ImportCatalog(ctx context.Context, c *ent.Client, cat *assess.Catalog, actor string) (*ent.PriceCatalog, error) {
	b, err := json.Marshal(cat)
	if err != nil {
		return nil, err
	}
	return c.PriceCatalog.Create().SetTarget(cat.Target).SetSource(cat.Source).SetDate(cat.Date).
		SetCurrency(cat.Currency).SetCatalog(string(b)).SetTypes(cat.Types()).SetImportedBy(actor).Save(ctx)
}
