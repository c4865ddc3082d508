package lab

import (
	"context"
	"runtime"
	"sync"
)

// inParallel calls f(i) for every i in [0, n) on par goroutines (par ≤ 0:
// GOMAXPROCS), handing out indexes in order until ctx is done, and returns
// ctx's error if it stopped early. f writes its result into a slot of its
// own index, so the outcome does not depend on the parallelism.
func inParallel(ctx context.Context, n, par int, f func(i int)) error {
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(par, n) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return ctx.Err()
}
