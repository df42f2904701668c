"""What a push must send: found from the new versions down, stopping where the remote's knowledge
starts, so its cost follows what is new, not the history, the refs or the pushes made.

1. Commits: walk the history of each pushed tip, newest first, and stop at a commit the remote
   holds: one its refs point at (known without asking), or one ``has_many`` confirms, asked in
   batches of up to ``COMMIT_BATCH`` candidates (the way git's have/want exchange stops at common
   commits). A remote holds an object only with everything below it (write order), so a commit it
   holds needs nothing more.
2. Objects of the new commits only: each tree is walked against its parent's tree by path, and an
   entry equal to the parent's (same id) is skipped: the parent is on the remote or in this push.
   A changed file's chunks that the parent's file at that path already had are skipped too. What
   is left is asked about level by level (``has_many`` in batches); a tree the remote holds is not
   walked further.
Objects found for one tip are not looked for again for the next, so ``push --all`` is one
negotiation, and each object is counted on the first pushed ref that needed it.

Why not ``graph.walk`` (which fetch, verify and gc use): that walk reaches everything below its
roots, and its remote loader reads objects from the remote. A push reads nothing from the remote
(its objects are local; it only asks ``has_many``), and must not reach everything: it stops at
commits the remote holds, newest first, and skips what a tree shares with its parent's tree by
path, which a walk from roots cannot know. It shares the graph's edges (``graph.children``).
"""

from __future__ import annotations

import heapq

from ..db import RELEASE_EVERY
from ..objects.encoding import CHUNK, COMMIT, DIR, FILE, MANIFEST, TREE, Commit
from ..objects.graph import children
from .base import HAVE_BATCH, Backend, batched

COMMIT_BATCH = 64


class Negotiation:
    def __init__(self, repo, backend: Backend, remote_tips):
        self.repo, self.backend = repo, backend
        self.on_remote: set[bytes] = set(remote_tips)  # known held by the remote (with all below)
        self.sending: dict[bytes, int] = {}  # id -> kind, for every tip so far
        self.expanded: set[bytes] = set()  # trees and manifests whose changed children are listed
        self.asked = 0  # has_many round trips, for the benchmarks
        self.loads = 0

    def _load(self, txn, oid: bytes, kind: int):
        """An object of the local store; the map's pages are released every RELEASE_EVERY loads
        (each fault maps its neighbours too: a full push touched 145 MB of a 822 MB store)."""
        self.loads += 1
        if self.loads % RELEASE_EVERY == 0:
            self.repo.db.release_pages()
        return self.repo.objects.load(txn, oid, kind)

    def _has(self, ids: list[bytes]) -> set[bytes]:
        present: set[bytes] = set()
        for batch in batched(ids, HAVE_BATCH):
            present |= self.backend.has_many(batch)
            self.asked += 1
        self.on_remote |= present
        return present

    def missing_for(self, tip: bytes) -> int:
        """Add to ``sending`` the objects ``tip`` needs that the remote lacks and earlier tips did
        not send; returns how many (they follow the earlier tips' in ``sending``'s order). One
        dict for the whole push: a second per tip doubled the memory of a push of one ref."""
        sending = self.sending
        before = len(sending)
        with self.repo.db.read() as txn:
            commits = self._new_commits(txn, tip)
            sending.update((cid, COMMIT) for cid, _ in commits)
            level: dict[bytes, int] = {}
            for _, commit in commits:
                parent_tree = None
                if commit.parents:
                    parent_tree = self._load(txn, commit.parents[0], COMMIT).tree
                self._changed(txn, commit.tree, parent_tree, level)
            del commits
            while level:  # what the trees name, asked about level by level
                ids = [oid for oid in level if oid not in self.on_remote and oid not in sending]
                present = self._has(ids)
                nxt: dict[bytes, int] = {}
                for oid in ids:
                    if oid in present:
                        continue
                    kind = level[oid]
                    sending[oid] = kind
                    if oid in self.expanded:
                        continue  # its changed children are listed already
                    if kind == TREE:
                        self._changed(txn, oid, None, nxt)
                    elif kind == MANIFEST:
                        for cid, _ in children(MANIFEST, self._load(txn, oid, MANIFEST)):
                            nxt.setdefault(cid, CHUNK)
                del ids, present
                level = nxt
        return len(sending) - before

    def _new_commits(self, txn, tip: bytes) -> list[tuple[bytes, Commit]]:
        """(id, commit) of the tip's history the remote lacks, newest first."""
        out: list[tuple[bytes, Commit]] = []
        if tip in self.on_remote or tip in self.sending:
            return out
        heap = [(-self._load(txn, tip, COMMIT).time, tip)]
        queued = {tip}
        candidates: list[bytes] = []
        while heap or candidates:
            while heap and len(candidates) < COMMIT_BATCH:
                _, cid = heapq.heappop(heap)
                candidates.append(cid)
            present = self._has(candidates)
            for cid in candidates:
                if cid in present:
                    continue  # the remote holds it, and so its whole history
                commit = self._load(txn, cid, COMMIT)
                out.append((cid, commit))
                for parent in commit.parents:
                    if parent in queued or parent in self.on_remote or parent in self.sending:
                        continue
                    queued.add(parent)
                    heapq.heappush(heap, (-self._load(txn, parent, COMMIT).time, parent))
            candidates = []
        return out

    def _changed(self, txn, tree_id: bytes, parent_tree: bytes | None, into: dict[bytes, int]) -> None:
        """Put into ``into`` the objects of ``tree_id`` that differ from ``parent_tree`` by path:
        the tree itself, then the entries whose ids differ, recursing where both are trees, and
        for a changed file only the chunks the parent's file lacked (its manifest is listed)."""
        if tree_id == parent_tree:
            return
        into.setdefault(tree_id, TREE)
        self.expanded.add(tree_id)
        old = {e.name: e for e in self._load(txn, parent_tree, TREE).entries} if parent_tree else {}
        for entry in self._load(txn, tree_id, TREE).entries:
            if entry.kind not in (FILE, DIR):
                continue
            before = old.get(entry.name)
            if before is not None and before.kind == entry.kind and before.id == entry.id:
                continue
            if entry.kind == DIR:
                if before is not None and before.kind == DIR:
                    self._changed(txn, entry.id, before.id, into)
                else:
                    into.setdefault(entry.id, TREE)
            else:
                into.setdefault(entry.id, MANIFEST)
                if before is not None and before.kind == FILE:
                    self.expanded.add(entry.id)
                    had = {cid for cid, _ in self._load(txn, before.id, MANIFEST).chunks}
                    for cid, _ in children(MANIFEST, self._load(txn, entry.id, MANIFEST)):
                        if cid not in had:
                            into.setdefault(cid, CHUNK)
