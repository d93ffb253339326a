package sqlstore

import (
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
)

// SQLite in WAL mode appends every commit to the write-ahead log and,
// once the log passes wal_autocheckpoint pages, copies it back into the
// database file and syncs it — inside the COMMIT that crossed the mark, on
// the one writer connection, with every request queued behind it. At a
// few thousand tokens a second that was a checkpoint every few dozen
// milliseconds on the writer's path. A checkpointer on a connection of its
// own does it instead, PASSIVE (it never waits for, nor blocks, the writer
// or the readers), every checkpointEvery; the writer's own automatic
// checkpoint stays as a backstop at writerCheckpointPages, should the
// checkpointer fall behind.
const (
	checkpointEvery       = 50 * time.Millisecond
	writerCheckpointPages = 4000 // 16 MB of log
)

type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
	once sync.Once
	err  error
}

func startCheckpointer(path string) (*checkpointer, error) {
	db, err := sql.Open(sqlite.DriverName, "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("open database checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// An error (the disk full, say) leaves the log to the
			// writer's backstop; the next tick tries again.
			_, _ = c.db.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// close stops the checkpointer (SQLite checkpoints what is left when the
// last connection closes); closing again does nothing.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.err = c.db.Close()
	})
	return c.err
}
