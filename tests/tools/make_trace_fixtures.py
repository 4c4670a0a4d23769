#!/usr/bin/python3
"""Writes small per-request npz traces (good and bad) with numpy, the
independent reference for moesim's trace loader. Usage: make_trace_fixtures.py OUTDIR
Prints, for the good trace, the per-expert loads of every layer (JSON) so the
C test can compare."""
import json, os, sys, zipfile
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(5)

def req(path, P, D, L=3, K=2, E=8, dtype=np.int32, rows=None, extra=None, drop=None, **kw):
    rows = P + D if rows is None else rows
    ids = rng.integers(0, E, size=(rows, L, K)).astype(dtype)
    arrays = dict(request_id=np.int64(kw.get('rid', 0)),
                  prompt_token_ids=np.full(P, -1, np.int32),
                  output_token_ids=np.full(D, -1, np.int32),
                  routed_experts=ids)
    if extra: arrays.update(extra)
    for k in (drop or []): arrays.pop(k)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, **arrays)
    return ids

# good: 4 requests, mixed prefill/decode, one request one row short
good = os.path.join(out, 'good')
loads = np.zeros((3, 8), np.int64)
for i, (P, D, rows) in enumerate([(5, 0, None), (3, 4, None), (7, 2, 8), (1, 1, None)]):
    ids = req(os.path.join(good, 'req_%02d.npz' % i), P, D, rows=rows, rid=100 + i)
    for l in range(3):
        loads[l] += np.bincount(ids[:, l, :].ravel(), minlength=8)
# another file type in the directory is ignored
open(os.path.join(good, 'README.txt'), 'w').write('not a trace\n')

def bad(name, **kw):
    req(os.path.join(out, 'bad_' + name, 'req_00.npz'), 4, 1, **kw)

bad('rows', rows=7)
bad('float', dtype=np.float32)
bad('missing', drop=['routed_experts'])
bad('missing_prompt', drop=['prompt_token_ids'])
bad('negative', extra=dict(routed_experts=-np.ones((5, 3, 2), np.int32)))
bad('topk0', extra=dict(routed_experts=np.zeros((5, 3, 0), np.int32)))
bad('twod', extra=dict(routed_experts=np.zeros((5, 3), np.int32)))
bad('huge', extra=dict(routed_experts=np.full((5, 3, 2), 70000, np.int32)))
# mixed layer counts across files
req(os.path.join(out, 'bad_layers', 'a.npz'), 2, 0, L=3)
req(os.path.join(out, 'bad_layers', 'b.npz'), 2, 0, L=4)
# no npz at all
os.makedirs(os.path.join(out, 'bad_empty'), exist_ok=True)
open(os.path.join(out, 'bad_empty', 'x.txt'), 'w').write('x')
# big-endian int16, Fortran order, uncompressed: all legal
ids = np.asfortranarray(rng.integers(0, 8, size=(4, 3, 2)).astype('>i2'))
os.makedirs(os.path.join(out, 'exotic'), exist_ok=True)
np.savez(os.path.join(out, 'exotic', 'r.npz'), request_id=np.int64(9), prompt_token_ids=np.zeros(4, np.int32),
         output_token_ids=np.zeros(0, np.int32), routed_experts=ids)
json.dump({'loads': loads.tolist(), 'exotic': np.ascontiguousarray(ids).astype(int).ravel().tolist()}, sys.stdout)
