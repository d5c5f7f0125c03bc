package conversation

import (
	"context"
	"sync"

	"aurabot/history"
)

// job is one piece of work for a conversation: a message to answer or a command to apply.
type job struct {
	run    func(ctx context.Context)
	reply  bool  // it calls the model: it counts against MaxConcurrentReplies
	notice bool  // a short answer, in a lane of its own: it never waits behind a streaming reply
	user   int64 // whose it is (0: nobody's), for submitCapped
}

// lane is one queue: a conversation's replies and commands, or its notices.
type lane struct {
	k      history.Key
	notice bool
}

// dispatcher runs each lane's jobs one at a time, in order, and lanes in parallel.
type dispatcher struct {
	sem     chan struct{} // one slot per reply allowed to run at once
	perUser int           // the most jobs one user may have waiting in a lane (submitCapped)

	mu      sync.Mutex
	queues  map[lane][]job
	waiting map[laneUser]int  // jobs waiting, per lane and user
	told    map[laneUser]bool // users refused since they last had nothing waiting
	wg      sync.WaitGroup
}

type laneUser struct {
	l    lane
	user int64
}

func newDispatcher(maxReplies, perUser int) *dispatcher {
	return &dispatcher{
		sem: make(chan struct{}, maxReplies), perUser: perUser,
		queues: map[lane][]job{}, waiting: map[laneUser]int{}, told: map[laneUser]bool{},
	}
}

// submit queues j for conversation k, and reports whether it waits behind others.
func (d *dispatcher) submit(ctx context.Context, k history.Key, j job) (queued bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.add(ctx, lane{k: k, notice: j.notice}, j)
}

// submitCapped is submit unless j.user has perUser jobs waiting in the lane (first: tell them).
func (d *dispatcher) submitCapped(ctx context.Context, k history.Key, j job) (queued, ok, first bool) {
	l := lane{k: k, notice: j.notice}
	d.mu.Lock()
	defer d.mu.Unlock()
	if lu := (laneUser{l, j.user}); d.perUser > 0 && j.user != 0 && d.waiting[lu] >= d.perUser {
		first = !d.told[lu]
		d.told[lu] = true
		return false, false, first
	}
	return d.add(ctx, l, j), true, false
}

// add queues j in lane l, starting the lane's worker if it has none. d.mu is held.
func (d *dispatcher) add(ctx context.Context, l lane, j job) (queued bool) {
	if j.user != 0 {
		d.waiting[laneUser{l, j.user}]++
	}
	q, running := d.queues[l]
	d.queues[l] = append(q, j)
	if running {
		return true
	}
	d.wg.Add(1)
	go d.work(ctx, l)
	return false
}

// started notes that j left lane l to run. d.mu is held.
func (d *dispatcher) started(l lane, j job) {
	if j.user == 0 {
		return
	}
	lu := laneUser{l, j.user}
	if d.waiting[lu]--; d.waiting[lu] <= 0 {
		// A later flood gets a notice again (not merely under the bound: a notice per job).
		delete(d.waiting, lu)
		delete(d.told, lu)
	}
}

func (d *dispatcher) work(ctx context.Context, k lane) {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		q := d.queues[k]
		if len(q) == 0 {
			delete(d.queues, k)
			d.mu.Unlock()
			return
		}
		j := q[0]
		q[0] = job{}
		d.queues[k] = q[1:]
		d.started(k, j)
		d.mu.Unlock()

		if j.reply {
			// Even when shutting down the job runs, to mark itself interrupted.
			d.sem <- struct{}{}
		}
		j.run(ctx)
		if j.reply {
			<-d.sem
		}
	}
}

// pending counts the jobs waiting, not the ones running.
func (d *dispatcher) pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, q := range d.queues {
		n += len(q)
	}
	return n
}

func (d *dispatcher) wait() { d.wg.Wait() }
