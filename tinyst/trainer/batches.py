"""Batches for the trainer: a batch sampler picks row indices, the collator turns rows into features.

One dataset -> its batch sampler (args.batch_sampler); several named datasets -> one sampler per
dataset combined by args.multi_dataset_batch_sampler over their concatenation, as ST 3.4 does.
A torch DataLoader runs the fetching + tokenizing, so dataloader_num_workers > 0 works.
Under DDP, drop_last is forced so every rank has equal batches (ST does the same).
Not included: IterableDataset streaming.
"""
import bisect

import torch
from torch.utils.data import ConcatDataset, DataLoader

from tinyst import distributed
from tinyst import sampler as samplers
from tinyst.training_args import BatchSamplers, MultiDatasetBatchSamplers

SAMPLERS = {BatchSamplers.BATCH_SAMPLER: samplers.DefaultBatchSampler,
            BatchSamplers.NO_DUPLICATES: samplers.NoDuplicatesBatchSampler,
            BatchSamplers.GROUP_BY_LABEL: samplers.GroupByLabelBatchSampler}
MULTI = {MultiDatasetBatchSamplers.ROUND_ROBIN: samplers.RoundRobinBatchSampler,
         MultiDatasetBatchSamplers.PROPORTIONAL: samplers.ProportionalBatchSampler}


class _Fetch(torch.utils.data.Dataset):
    """dataset[list of global row indices] -> (dataset name, features, labels) for one batch."""

    def __init__(self, named, collator):
        self.names, self.datasets, self.collator = [n for n, _ in named], [d for _, d in named], collator
        sizes = [len(d) for d in self.datasets]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]

    def __len__(self):
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, indices):
        d = bisect.bisect_right(self.offsets, indices[0]) - 1
        rows = self.datasets[d][[i - self.offsets[d] for i in indices]]  # {column: list}
        features, labels = self.collator(rows, self.names[d] if len(self.names) > 1 else None)
        return self.names[d], features, labels


class BatchLoader:
    def __init__(self, named, collator, args, batch_size: int, seed: int):
        drop_last = args.dataloader_drop_last or distributed.is_distributed()
        make = SAMPLERS[BatchSamplers(args.batch_sampler)]
        per_dataset = [make(ds, batch_size, drop_last, valid_label_columns=["label", "score"],
                            generator=torch.Generator(), seed=seed) for _, ds in named]
        if len(per_dataset) == 1:
            self.sampler = per_dataset[0]
        else:
            concat = ConcatDataset([ds for _, ds in named])
            multi = MULTI[MultiDatasetBatchSamplers(args.multi_dataset_batch_sampler)]
            self.sampler = multi(concat, per_dataset, generator=torch.Generator(), seed=seed)
        # subtle: an own generator, or each new DataLoader iterator draws from the global RNG and
        # shifts the dropout masks of a resumed run away from the uninterrupted one
        self.loader = DataLoader(_Fetch(named, collator), sampler=self.sampler, batch_size=None,
                                 num_workers=args.dataloader_num_workers, collate_fn=lambda batch: batch,
                                 generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        return iter(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def skip_batches(self, n: int) -> None:
        self.sampler.skip_batches(n)
