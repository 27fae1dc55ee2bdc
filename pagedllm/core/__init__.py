"""Pure-Python core: blocks, block tables, requests and the scheduler. Never imports torch."""

from pagedllm.core.block_pool import BlockPool, FreeBlockQueue, KVCacheBlock
from pagedllm.core.kv_cache_manager import KVCacheManager, KVCacheStats, cdiv
from pagedllm.core.request import Request, RequestStatus, StopCriteria
from pagedllm.core.scheduler import RequestRejectedError, Scheduler, SchedulerConfig
from pagedllm.core.scheduler_output import NewRequestData, ScheduledRequest, SchedulerOutput

__all__ = [
    "BlockPool",
    "FreeBlockQueue",
    "KVCacheBlock",
    "KVCacheManager",
    "KVCacheStats",
    "NewRequestData",
    "Request",
    "RequestRejectedError",
    "RequestStatus",
    "ScheduledRequest",
    "Scheduler",
    "SchedulerConfig",
    "SchedulerOutput",
    "StopCriteria",
    "cdiv",
]
