package conversation

import (
	"context"
	"sync"

	"aurabot/history"
)

// job is one piece of work for a conversation: a message to answer or a command to apply.
type job struct {
	run func(ctx context.Context)
	// reply marks jobs that call the model; they count against MaxConcurrentReplies.
	reply bool
	// notice marks a short answer (help, a refusal, "text only"): notices have a queue of their
	// own per conversation, so that they neither wait behind a streaming reply nor hold up the
	// updates that come after them.
	notice bool
}

// lane is one queue: a conversation's replies and commands, or its notices.
type lane struct {
	k      history.Key
	notice bool
}

// dispatcher runs the jobs of each conversation one at a time, in the order they came, and the
// jobs of different conversations in parallel. A conversation with nothing to do holds no
// goroutine: the worker of a conversation exits when its queue is empty.
type dispatcher struct {
	sem chan struct{} // one slot per reply allowed to run at once

	mu     sync.Mutex
	queues map[lane][]job
	wg     sync.WaitGroup
}

func newDispatcher(maxReplies int) *dispatcher {
	return &dispatcher{sem: make(chan struct{}, maxReplies), queues: map[lane][]job{}}
}

// submit queues j for conversation k. It reports whether the job had to wait behind others.
func (d *dispatcher) submit(ctx context.Context, k history.Key, j job) (queued bool) {
	l := lane{k: k, notice: j.notice}
	d.mu.Lock()
	defer d.mu.Unlock()
	q, running := d.queues[l]
	d.queues[l] = append(q, j)
	if running {
		return true
	}
	d.wg.Add(1)
	go d.work(ctx, l)
	return false
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
		d.mu.Unlock()

		if j.reply {
			// Even when shutting down the job runs, so that it can mark itself interrupted;
			// the slot frees up quickly then, as every reply's context is cancelled too.
			d.sem <- struct{}{}
		}
		j.run(ctx)
		if j.reply {
			<-d.sem
		}
	}
}

// pending reports how many jobs wait in all queues, not counting the ones running.
func (d *dispatcher) pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, q := range d.queues {
		n += len(q)
	}
	return n
}

// workers reports how many conversations have a worker (a goroutine) now.
func (d *dispatcher) workers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.queues)
}

// wait blocks until every worker has finished.
func (d *dispatcher) wait() { d.wg.Wait() }
