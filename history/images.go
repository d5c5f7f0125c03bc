package history

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// insertImages stores the images of turn id, in order.
func insertImages(ctx context.Context, tx *sqlx.Tx, id int64, images []Image) error {
	for i, im := range images {
		if im.MIME == "" {
			return fmt.Errorf("image %d has no media type", i)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO turn_images (turn_id, idx, mime, data) VALUES (?, ?, ?, ?)`,
			id, i, im.MIME, im.Data); err != nil {
			return err
		}
	}
	return nil
}

// imagesBetween reads the images of the turns with ids from first to last, by turn id.
func imagesBetween(ctx context.Context, q sqlx.QueryerContext, first, last int64) (map[int64][]Image, error) {
	type row struct {
		id int64
		im Image
	}
	rows, err := scanAll(ctx, q, func(r scanner) (x row, err error) { err = r.Scan(&x.id, &x.im.MIME, &x.im.Data); return },
		`SELECT turn_id, mime, data FROM turn_images WHERE turn_id BETWEEN ? AND ? ORDER BY turn_id, idx`, first, last)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	out := map[int64][]Image{}
	for _, r := range rows {
		out[r.id] = append(out[r.id], r.im)
	}
	return out, nil
}

// attachImages reads the images of the turns that have some. Only turns with images cost a
// query: a window of text turns reads nothing more.
func attachImages(ctx context.Context, q sqlx.QueryerContext, ts []Turn) error {
	first, last := int64(0), int64(0)
	for _, t := range ts {
		if t.imageCount > 0 {
			if first == 0 {
				first = t.ID
			}
			last = t.ID
		}
	}
	if first == 0 {
		return nil
	}
	byTurn, err := imagesBetween(ctx, q, first, last)
	if err != nil {
		return err
	}
	for i := range ts {
		ts[i].Images = byTurn[ts[i].ID]
	}
	return nil
}
