package pool

import (
	"context"
	"time"

	"corral/internal/worker"
)

// zygote returns the zygote workers are forked from (--preload), starting
// one if there is none or the last one died.
func (p *Pool) zygote(ctx context.Context) (*worker.Zygote, error) {
	p.zmu.Lock()
	defer p.zmu.Unlock()
	if z := p.zyg; z != nil {
		select {
		case <-z.Done():
			p.log.Warn("the zygote exited; starting a new one", "pid", z.Pid())
		default:
			return z, nil
		}
	}
	z, err := p.startZygote(ctx)
	if err != nil {
		return nil, err
	}
	p.zyg = z
	return z, nil
}

func (p *Pool) startZygote(ctx context.Context) (*worker.Zygote, error) {
	cfg := p.cfg.Worker
	cfg.KillGrace = p.cfg.KillGrace
	cfg.Boot.WorkerID = 0
	cfg.Boot.Threads = p.cfg.Threads
	cfg.Boot.Multiprocess = p.cfg.Workers > 1
	ctx, cancel := context.WithTimeout(ctx, p.cfg.BootTimeout)
	defer cancel()
	z, err := worker.StartZygote(ctx, p.cfg.Spawner, cfg)
	if err != nil {
		return nil, err
	}
	p.log.Info("zygote ready: workers are forked from the preloaded app", "pid", z.Pid())
	return z, nil
}

// retireZygote stops a replaced zygote once the workers it forked are gone.
func (p *Pool) retireZygote(z *worker.Zygote) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for z.Children() > 0 {
		select {
		case <-t.C:
		case <-z.Done():
			p.forgetZygote(z)
			return
		case <-p.stopCtx.Done():
			return // halt takes care of it
		}
	}
	p.shutdownWithin(z, time.Second)
	p.forgetZygote(z)
	p.log.Info("old zygote stopped", "pid", z.Pid())
}

func (p *Pool) forgetZygote(z *worker.Zygote) {
	p.zmu.Lock()
	defer p.zmu.Unlock()
	for i, o := range p.oldZygotes {
		if o == z {
			p.oldZygotes = append(p.oldZygotes[:i], p.oldZygotes[i+1:]...)
			return
		}
	}
}

// stopZygotes ends the current zygote, and any old one still waiting for its
// workers. halt calls it once every worker is gone.
func (p *Pool) stopZygotes() {
	p.zmu.Lock()
	zs := p.oldZygotes
	if p.zyg != nil {
		zs = append(zs, p.zyg)
	}
	p.zyg, p.oldZygotes = nil, nil
	p.zmu.Unlock()
	for _, z := range zs {
		p.shutdownWithin(z, time.Second)
	}
}
