package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgres is the engine for several processes sharing one database. The
// pool is pgx's (pgxpool), seen through database/sql (pgx's stdlib) so
// the queries are the ones SQLite runs; the listener of other processes'
// change stamps uses the pool's connections directly.
type postgres struct {
	pool *pgxpool.Pool
	db   *sql.DB
	log  *slog.Logger
	// catchUp is how often the listener reads the stamps it may have
	// missed (a notification lost with a dropped connection).
	catchUp time.Duration

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Locks of pg_advisory_lock and pg_advisory_xact_lock, one number each.
const (
	lockMigrations = 727_001
	lockClaims     = 727_002
)

// stampChannel is the NOTIFY channel of migration 0007's trigger.
const stampChannel = "imagebadger_stamps"

func openPostgres(ctx context.Context, s *Store, dsn string) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password: say what is wrong without it.
		return fmt.Errorf("store: the PostgreSQL URL does not parse: %s", redact(err.Error(), dsn))
	}
	if cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("store: open PostgreSQL: %s", redact(err.Error(), dsn))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("store: open PostgreSQL: %w: %s", ErrUnavailable, redact(err.Error(), dsn))
	}
	db := stdlib.OpenDBFromPool(pool)
	e := &postgres{pool: pool, db: db, log: slog.New(slog.DiscardHandler), catchUp: time.Second}
	n := &numbered{}
	c := conn{db: db, rebind: n.rebind, mark: markUnavailable}
	s.engine, s.write, s.read = e, c, c
	return nil
}

// redact removes a password of dsn from a message.
func redact(msg, dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			if colon := strings.Index(dsn[i+3:at], ":"); colon >= 0 {
				pw := dsn[i+3+colon+1 : at]
				if pw != "" {
					msg = strings.ReplaceAll(msg, pw, "xxxxx")
				}
			}
		}
	}
	return msg
}

// markUnavailable marks the errors of a database that does not answer
// (connection refused or cut, server shutting down) with ErrUnavailable, so
// the server answers 503 for them and 500 for nothing else of the kind.
func markUnavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &pgErr):
		// 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now,
		// class 08 connection exceptions.
		if strings.HasPrefix(pgErr.Code, "57P") || strings.HasPrefix(pgErr.Code, "08") {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	case errors.As(err, &connErr), errors.As(err, &netErr), errors.Is(err, sql.ErrConnDone),
		pgconn.SafeToRetry(err), strings.Contains(err.Error(), "closed pool"), strings.Contains(err.Error(), "conn closed"),
		strings.Contains(err.Error(), "unexpected EOF"):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func (*postgres) name() string { return "postgres" }

// createFresh keeps no snapshot: a PostgreSQL database is created once per
// deployment, so its migrations are always applied one by one.
func (*postgres) createFresh(context.Context, *Store, []migration) (bool, error) { return false, nil }

// migrating holds a session advisory lock while fn runs, so that replicas
// starting together migrate once: the others wait, then find every
// migration applied.
func (e *postgres) migrating(ctx context.Context, _ *Store, fn func() error) error {
	c, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migration lock: %w", markUnavailable(err))
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockMigrations); err != nil {
		return fmt.Errorf("store: migration lock: %w", markUnavailable(err))
	}
	defer func() {
		_, _ = c.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockMigrations)
	}()
	return fn()
}

// bump takes each scope's stamp from the sequence while holding the
// scope's row lock (the sequence is read in the ON CONFLICT's SET, after
// the lock), so a scope's stamps grow in the order its changes commit.
func (*postgres) bump(ctx context.Context, _ *Store, t *tx, scopes []Scope) (map[Scope]Stamp, error) {
	given := make(map[Scope]Stamp, len(scopes))
	for _, sc := range scopes {
		var st int64
		if err := t.QueryRowContext(ctx, `INSERT INTO change_stamps (scope, stamp) VALUES (?, nextval('change_stamp_seq'))
			ON CONFLICT (scope) DO UPDATE SET stamp = nextval('change_stamp_seq') RETURNING stamp`, string(sc)).Scan(&st); err != nil {
			return nil, fmt.Errorf("store: stamp %s: %w", sc, err)
		}
		given[sc] = Stamp(st)
	}
	return given, nil
}

// lockClaims serialises claims across processes for the transaction, so the
// attempts in flight to a receiver, counted from leased rows, are exact.
func (*postgres) lockClaims(ctx context.Context, t *tx) error {
	_, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, lockClaims)
	return err
}

func (*postgres) forUpdate(skipLocked bool) string {
	if skipLocked {
		return " FOR UPDATE SKIP LOCKED"
	}
	return " FOR UPDATE"
}

// renumber sets the identity's sequence past the largest id copied.
func (*postgres) renumber(ctx context.Context, t *tx, table, column string) error {
	_, err := t.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+table+`', '`+column+`'),
		COALESCE((SELECT MAX(`+column+`) FROM `+table+`), 0) + 1, false)`)
	return err
}

// afterCopy sets the change stamp sequence past the stamps copied.
func (*postgres) afterCopy(ctx context.Context, s *Store) error {
	if _, err := s.write.ExecContext(ctx, `SELECT setval('change_stamp_seq', COALESCE((SELECT MAX(stamp) FROM change_stamps), 0) + 1, false)`); err != nil {
		return fmt.Errorf("store: copy: change stamps: %w", err)
	}
	return s.loadStamps(ctx)
}

// outboxGrew refreshes the planner's statistics of the outbox (and of the
// subscriptions it joins, which a fan-out's subscribers may have just
// filled). Claims
// read the first due rows in (next_attempt_at, id) order through
// deliveries_due and stop; with statistics from before a fan-out of
// thousands of rows, PostgreSQL expects a handful of due rows, reads them
// all by bitmap and sorts them, on every claim (40 ms instead of 1 ms at
// 20,000 pending). Autovacuum would catch up within a minute or so; a
// fan-out is over by then. ANALYZE samples the table, in tens of
// milliseconds, once per large fan-out.
func (*postgres) outboxGrew(ctx context.Context, s *Store) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, _ = s.write.ExecContext(ctx, `ANALYZE deliveries, subscriptions`)
}

// start runs the listener of change stamps: every stamp another process
// commits is learnt (LISTEN/NOTIFY, within milliseconds), and every
// catchUp the stamps newer than those seen are read, so a notification lost
// with a dropped connection costs at most one interval.
func (e *postgres) start(s *Store) error {
	ctx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	e.cancel, e.done = cancel, make(chan struct{})
	e.mu.Unlock()
	go func() {
		defer close(e.done)
		e.listen(ctx, s)
	}()
	return nil
}

func (e *postgres) listen(ctx context.Context, s *Store) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := e.waitNotifications(ctx, s); err != nil && ctx.Err() == nil {
				e.log.Warn("store: change stamp listener", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	})
	t := time.NewTicker(e.catchUp)
	defer t.Stop()
	var watermark, previous Stamp
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Read from the watermark of the catch-up before last: a stamp
		// taken early by a transaction that commits late is still read, up
		// to one interval after it was taken.
		next, err := s.catchUp(ctx, previous)
		if err != nil {
			continue
		}
		previous, watermark = watermark, max(watermark, next)
	}
}

// waitNotifications listens on one connection of the pool until it fails.
func (e *postgres) waitNotifications(ctx context.Context, s *Store) error {
	c, err := e.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := c.Exec(ctx, "LISTEN "+stampChannel); err != nil {
		return err
	}
	for {
		n, err := c.Conn().WaitForNotification(ctx)
		if err != nil {
			// The connection is in an unknown state: drop it from the pool.
			c.Conn().Close(context.WithoutCancel(ctx))
			return err
		}
		stamp, scope, ok := strings.Cut(n.Payload, " ")
		if st, err := strconv.ParseInt(stamp, 10, 64); ok && err == nil {
			s.learnExternal(Scope(scope), Stamp(st))
		}
	}
}

func (e *postgres) stop() {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (e *postgres) close() error {
	err := e.db.Close()
	e.pool.Close()
	return err
}
