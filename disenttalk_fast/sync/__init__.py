"""The lip-sync expert (paper Eq. 10): its model, its training, L_sync and sync scores."""

from disenttalk_fast.sync.expert import SyncExpert, SyncLoss, all_windows
from disenttalk_fast.sync.metrics import SyncScores, sync_scores
from disenttalk_fast.sync.train import train_sync_expert

__all__ = ["SyncExpert", "SyncLoss", "all_windows", "SyncScores", "sync_scores",
           "train_sync_expert"]
