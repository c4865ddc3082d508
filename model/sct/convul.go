package sct

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// ConVul CVE programs: Linux kernel races with a CVE, as the ConVul
// benchmark extracted them into two-thread programs (Cai et al., "Detecting
// concurrency memory corruption vulnerabilities", ESEC/FSE 2019; the
// benchmark as the PERIOD, RFF and SURW artifacts run it, directory
// ConVul-CVE-Benchmarks/). Each is re-expressed as the NT driver code with
// the same shape: a fast mutex, spin lock or ERESOURCE for the Linux lock,
// pool blocks for the objects, and the crash the CVE describes (NULL
// dereference 0x7E, use after free 0xD5 under Verifier's special pool).
// They run on the default two processors.

const convul = "ConVul CVE benchmark (ConVul-CVE-Benchmarks/ in the PERIOD/RFF/SURW artifacts; " +
	"github.com/KennethLamar/ConVul cve-benchmark/ for 2017-15265)"

func init() {
	register := func(name, doc, section string, bug model.Variant, setup func(*model.Env) error) {
		model.Register(&model.Scenario{
			Name: name, Doc: doc + " Origin: " + convul + ".", Section: section,
			Variants: []model.Variant{{Name: "correct", Doc: "the upstream fix"}, bug},
			Setup:    setup,
		})
	}
	register("cve-2009-3547",
		"Linux pipe_rdwr_open/pipe_release (fs/pipe.c): open counts a reader on inode->i_pipe under i_mutex "+
			"without checking it, while the last release frees the pipe and clears the pointer under the same "+
			"mutex. NT form: an IRP_MJ_CREATE path and the last IRP_MJ_CLOSE on a shared per-file context under "+
			"a fast mutex. The fix checks the pointer under the mutex and fails the open.",
		"ConVul CVE-2009-3547",
		model.Variant{Name: "bug", Bug: true, Doc: "open dereferences the pipe pointer without a NULL check",
			Marks: []*model.Mark{markCve20093547OpenAfterThe}, Want: "0x7E"},
		setupCVE20093547)
	register("cve-2016-7911",
		"Linux get_task_ioprio (block/ioprio.c) reads task->io_context without task_lock while the exiting "+
			"task frees it under task_lock (exit_io_context). NT form: a query path checks and then reads a "+
			"context pointer that a teardown thread clears and frees under a spin lock. The fix takes the lock "+
			"around the check and the read.",
		"ConVul CVE-2016-7911",
		model.Variant{Name: "bug", Bug: true, Doc: "check and read the context without the lock",
			Marks: []*model.Mark{markCve20167911ContextFreedBetween}, Want: "0xD5|0x7E"},
		setupCVE20167911)
	register("cve-2017-15265",
		"Linux ALSA snd_seq_ioctl_create_port (sound/core/seq/seq_clientmgr.c): the port is linked into the "+
			"client's list under the list locks and then filled in after they are dropped, so a concurrent "+
			"delete of that port number unlinks and frees it under the creator. NT form: a create IOCTL and a "+
			"delete IOCTL on a port list under a fast mutex. The fix takes a reference before unlocking; delete "+
			"waits for the references to drain (snd_use_lock_sync).",
		"ConVul CVE-2017-15265",
		model.Variant{Name: "bug", Bug: true, Doc: "fill in the new port after unlocking, without a reference",
			Marks: []*model.Mark{markCve201715265PortDeletedWhile}, Want: "0xD5"},
		setupCVE201715265)
	register("cve-2015-7550",
		"Linux keyctl_read_key (security/keys/keyctl.c) checks that the key is not revoked before taking "+
			"key->sem, then reads the payload under it, while keyctl_revoke marks the key revoked and frees the "+
			"payload under the semaphore. NT form: an ERESOURCE, a shared reader and an exclusive revoker. The "+
			"fix re-checks under the resource.",
		"ConVul CVE-2015-7550",
		model.Variant{Name: "bug", Bug: true, Doc: "check revoked before acquiring the resource",
			Marks: []*model.Mark{markCve20157550KeyRevokedBetween}, Want: "0x7E"},
		setupCVE20157550)
	register("cve-2013-1792",
		"Linux install_user_keyrings (security/keys/process_keys.c) returns early when user->uid_keyring is "+
			"set, checked without the mutex, but the installer sets uid_keyring before session_keyring, so a "+
			"second thread can use a NULL session keyring. NT form: lazy initialisation of two pointers under a "+
			"fast mutex with an unlocked fast-path check of the first. The fix checks under the mutex.",
		"ConVul CVE-2013-1792",
		model.Variant{Name: "bug", Bug: true, Doc: "fast-path check of the first pointer without the mutex",
			Marks: []*model.Mark{markCve20131792SawTheFirst}, Want: "0x7E"},
		setupCVE20131792)
}

// spawnPair runs init on a main thread (allocations need a thread), then
// starts two system threads, the second after a little work of its own so
// that in the plain schedule the first runs its path first, and joins them.
// After both end, main frees whatever blocks are still allocated (the
// unload path), so the only findings are the race's own.
func spawnPair(p *prog, init, first, second func(), blocks ...**kernel.PoolBlock) {
	p.main(func() {
		init()
		t1 := p.spawn("thread1", first)
		t2 := p.spawn("thread2", func() {
			p.k.Compute(5 * des.Microsecond)
			second()
		})
		p.join(t1, t2)
		for _, b := range blocks {
			if *b != nil && !(*b).Freed() {
				p.k.ExFreePool(*b)
			}
		}
	})
}

func setupCVE20093547(env *model.Env) error {
	p := newProg(env, "cve-2009-3547")
	iMutex := p.newMutex("i_mutex")
	var pipe *ref
	var block *kernel.PoolBlock
	readers := p.cell("readers", 1)
	released := false                                                                       // model-only
	spawnPair(p, func() { pipe = p.newRef("i_pipe", "Pipe"); block = pipe.block }, func() { // pipe_rdwr_open
		iMutex.lock()
		b := pipe.load()
		if env.Is("correct") && b == nil {
			iMutex.unlock()
			return // -ENOENT
		}
		if released {
			env.Hit(markCve20093547OpenAfterThe)
		}
		p.deref(b, "pipe_rdwr_open readers++")
		p.k.Write(readers, p.k.Read(readers)+1)
		iMutex.unlock()
	}, func() { // pipe_release of the last reader
		iMutex.lock()
		n := p.k.Read(readers) - 1
		p.k.Write(readers, n)
		if n == 0 {
			pipe.clearAndFree()
			released = true
		}
		iMutex.unlock()
	}, &block)
	return nil
}

func setupCVE20167911(env *model.Env) error {
	p := newProg(env, "cve-2016-7911")
	taskLock := p.k.KeInitializeSpinLock("cve-2016-7911 task_lock")
	var ioc *ref
	var block *kernel.PoolBlock
	freed, between := false, false                                                            // model-only
	spawnPair(p, func() { ioc = p.newRef("io_context", "IoCx"); block = ioc.block }, func() { // exit_io_context, running first: the task is exiting
		p.k.Compute(2 * des.Microsecond)
		old := p.k.KeAcquireSpinLock(taskLock)
		p.k.Write(ioc.cell, 0)
		p.k.KeReleaseSpinLock(taskLock, old)
		p.k.ExFreePool(ioc.block)
		freed = true
		if between { // the reader sits between its check and its read (maybe at the read's own scheduling point)
			env.Hit(markCve20167911ContextFreedBetween)
		}
	}, func() { // get_task_ioprio
		if env.Is("correct") {
			old := p.k.KeAcquireSpinLock(taskLock)
			if b := ioc.load(); b != nil {
				p.deref(b, "get_task_ioprio ioc->ioprio")
			}
			p.k.KeReleaseSpinLock(taskLock, old)
			return
		}
		if b := ioc.load(); b != nil {
			between = true
			if freed {
				env.Hit(markCve20167911ContextFreedBetween)
			}
			p.k.Compute(des.Microsecond)
			if freed {
				env.Hit(markCve20167911ContextFreedBetween)
			}
			p.deref(b, "get_task_ioprio ioc->ioprio")
			between = false
		}
	}, &block)
	return nil
}

func setupCVE201715265(env *model.Env) error {
	p := newProg(env, "cve-2017-15265")
	portsMutex := p.newMutex("ports_mutex")
	const portNum = 1
	listed := p.cell("port 1 listed", 0)
	refs := p.cell("port 1 use count", 0)
	drained := p.k.KeInitializeEvent("cve-2017-15265 use_lock drained", kernel.NotificationEvent, false)
	var port *kernel.PoolBlock
	inUse := false                   // model-only: the creator is between unlocking and its last use
	spawnPair(p, func() {}, func() { // snd_seq_ioctl_create_port
		port = p.k.ExAllocatePoolWithTag(kernel.NonPagedPool, 64, "SeqP")
		portsMutex.lock()
		p.k.Write(listed, portNum)
		if env.Is("correct") {
			p.k.InterlockedIncrement(refs) // snd_seq_port_use
		}
		inUse = true
		portsMutex.unlock()
		p.deref(port, "snd_seq_set_port_info") // fill in the port
		inUse = false
		if env.Is("correct") && p.k.InterlockedDecrement(refs) == 0 {
			p.k.KeSetEvent(drained, kernel.IO_NO_INCREMENT, false)
		}
	}, func() { // snd_seq_delete_port(client, 1)
		portsMutex.lock()
		found := p.k.Read(listed) == portNum
		if found {
			p.k.Write(listed, 0)
		}
		portsMutex.unlock()
		if !found {
			return
		}
		if env.Is("correct") && p.k.Read(refs) != 0 {
			p.k.KeWaitForSingleObject(drained, kernel.Infinite) // snd_use_lock_sync
		}
		if inUse {
			env.Hit(markCve201715265PortDeletedWhile)
		}
		p.k.ExFreePool(port)
	}, &port)
	return nil
}

func setupCVE20157550(env *model.Env) error {
	p := newProg(env, "cve-2015-7550")
	sem := p.k.ExInitializeResourceLite("cve-2015-7550 key->sem")
	revoked := p.cell("key revoked", 0)
	var payload *ref
	var block *kernel.PoolBlock
	spawnPair(p, func() { payload = p.newRef("key payload", "KeyP"); block = payload.block }, func() { // keyctl_revoke
		p.k.Compute(2 * des.Microsecond)
		p.k.KeEnterCriticalRegion()
		p.k.ExAcquireResourceExclusiveLite(sem, true)
		p.k.Write(revoked, 1)
		payload.clearAndFree()
		p.k.ExReleaseResourceLite(sem)
		p.k.KeLeaveCriticalRegion()
	}, func() { // keyctl_read_key
		bugCheckFirst := !env.Is("correct")
		if bugCheckFirst && p.k.Read(revoked) == 1 {
			return // -EKEYREVOKED
		}
		p.k.KeEnterCriticalRegion()
		p.k.ExAcquireResourceSharedLite(sem, true)
		if !bugCheckFirst && p.k.Read(revoked) == 1 {
			p.k.ExReleaseResourceLite(sem)
			p.k.KeLeaveCriticalRegion()
			return
		}
		b := payload.load()
		if b == nil {
			env.Hit(markCve20157550KeyRevokedBetween)
		}
		p.deref(b, "keyctl_read_key payload")
		p.k.ExReleaseResourceLite(sem)
		p.k.KeLeaveCriticalRegion()
	}, &block)
	return nil
}

func setupCVE20131792(env *model.Env) error {
	p := newProg(env, "cve-2013-1792")
	keyMutex := p.newMutex("key_user_keyring_mutex")
	uid, session := p.cell("uid_keyring", 0), p.cell("session_keyring", 0)
	var uidBlock, sessionBlock *kernel.PoolBlock
	install := func() {
		if !env.Is("correct") && p.k.Read(uid) != 0 {
			// Fast path: already installed, use the session keyring.
			if p.k.Read(session) == 0 {
				env.Hit(markCve20131792SawTheFirst)
				p.deref(nil, "install_user_keyrings session_keyring")
				return
			}
			p.deref(sessionBlock, "install_user_keyrings session_keyring")
			return
		}
		keyMutex.lock()
		if p.k.Read(uid) == 0 {
			uidBlock = p.k.ExAllocatePoolWithTag(kernel.NonPagedPool, 64, "UidK")
			p.k.Write(uid, 1)
			sessionBlock = p.k.ExAllocatePoolWithTag(kernel.NonPagedPool, 64, "SesK")
			p.k.Write(session, 1)
		}
		p.deref(sessionBlock, "install_user_keyrings session_keyring")
		keyMutex.unlock()
	}
	spawnPair(p, func() {}, install, install, &uidBlock, &sessionBlock)
	return nil
}
