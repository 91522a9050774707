"""Bodies of the /api/learning/ endpoints and of POST /candles, as pydantic models.

The response shapes follow the specification's examples (continuous-learning-auto-
optimization.md); fields beyond them are additions, never renamings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from bot.webhook.routing import MAX_ID
from bot.webhook.schemas import IsoDateTime, ScopeName, Strict, Symbol, Text, Version, whole_number

Metrics = dict[str, float | int | None]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Window = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,3}[hdw]$", description="24h, 30d, 2w")]
Limit = Annotated[int, Field(ge=1, le=1000)]
Days = Annotated[int, Field(ge=1, le=3650), BeforeValidator(whole_number)]  # 30.0 is 30
MAX_CANDLES = 5000


Level = Literal["HIGH", "MEDIUM", "LOW"]  # a volatility level, as the spec spells it


class HistoryQuery(BaseModel):
    time_range: Window = "30d"
    volatility_level: ScopeName | None = None
    limit: Limit = 50


class RunOut(BaseModel):
    run_id: str
    trigger: Literal["TRADE_COUNT", "SCHEDULED", "PERFORMANCE_DROP", "MANUAL"]
    volatility_level: ScopeName
    method: Literal["grid", "bayes"]
    status: str
    improvement_found: bool
    improvement_percentage: float | None
    baseline_score: float | None = Field(description="Out-of-sample fitness of the baseline")
    best_score: float | None = Field(description="Out-of-sample fitness of the winner")
    candidates_tested: int
    duration_seconds: float | None
    started_at: datetime
    finished_at: datetime | None
    winner_version: int | None


class SummaryOut(BaseModel):
    total_runs: int
    improvements_found: int
    success_rate: float
    avg_improvement_pct: float | None


class HistoryOut(BaseModel):
    runs: list[RunOut]
    summary: SummaryOut


class ConfigsQuery(BaseModel):
    volatility_level: ScopeName | None = None
    status: Literal["TESTING", "ACTIVE", "ARCHIVED", "FAILED"] | None = None
    limit: Limit = 50


class ConfigOut(BaseModel):
    id: int
    config_name: str
    volatility_level: ScopeName
    version: int
    parameters: dict[str, float | int]
    metrics: Metrics | None = Field(description="Out of sample, when the optimizer measured it")
    fitness_score: float | None
    status: Literal["TESTING", "ACTIVE", "ARCHIVED", "FAILED"]
    improved: bool
    improvement_percentage: float | None
    applied_at: datetime
    source: str
    author: str
    reason: str
    optimization_run_id: str | None


class ConfigsOut(BaseModel):
    configs: list[ConfigOut]


class ActiveConfigsOut(BaseModel):
    active_configs: list[ConfigOut]


class CounterOut(BaseModel):
    volatility_level: Level
    count: int
    threshold: int
    percentage: float
    last_optimization: datetime | None


class CountersOut(BaseModel):
    counters: list[CounterOut]


class OptimizeIn(Strict):
    volatility_level: ScopeName = Field(description="The scope to optimize: a level or global")
    lookback_days: Days | None = Field(default=None, description="Default: the configured lookback")
    method: Literal["grid", "bayes"] | None = Field(
        default=None, description="Default: the configured method"
    )


class TriggeredOut(BaseModel):
    status: Literal["triggered"]
    task_id: str = Field(description="The run id, as the specification's task id")
    run_id: str
    volatility_level: ScopeName
    lookback_days: int
    method: Literal["grid", "bayes"]
    message: str


class DataRangeOut(BaseModel):
    start: datetime
    end: datetime
    timeframe: str
    symbols: list[str]


class CandidateOut(BaseModel):
    position: int = Field(description="0 is the baseline")
    is_baseline: bool
    parameters: dict[str, float | int]
    status: Literal["TESTING", "ACTIVE", "ARCHIVED", "FAILED"]
    in_sample_fitness: float | None
    out_of_sample_fitness: float | None
    metrics: dict[str, Any]


class RunDetailOut(RunOut):
    requested_by: str
    seed: int | None
    code_version: str | None
    data_range: DataRangeOut | None
    error: str | None
    results: dict[str, Any] | None
    candidates: list[CandidateOut]


class CompareQuery(BaseModel):
    config_a_id: Id
    config_b_id: Id


class CompareSideOut(BaseModel):
    id: int
    name: str
    volatility_level: ScopeName
    version: int
    score: float | None
    metrics: Metrics | None
    parameters: dict[str, float | int]


class CompareOut(BaseModel):
    config_a: CompareSideOut
    config_b: CompareSideOut
    improvement_percentage: float | None
    winner: Literal["config_a", "config_b", "tie"] | None


class OverviewOut(BaseModel):
    total_optimization_runs: int
    successful_runs: int
    improvements_found: int
    success_rate: float
    avg_improvement_pct: float | None
    avg_candidates_tested: float | None


class RecentActivityOut(BaseModel):
    runs_last_30_days: int
    improvements_last_30_days: int


class ConfigurationsOut(BaseModel):
    total_configs: int
    active_configs: int


class VolatilityOut(BaseModel):
    volatility: Level
    total_runs: int
    improvements_found: int
    success_rate: float


class LearningMetricsOut(BaseModel):
    overview: OverviewOut
    recent_activity: RecentActivityOut
    configurations: ConfigurationsOut
    by_volatility: list[VolatilityOut]


class ApplyConfigIn(Strict):
    reason: Text = ""
    based_on: Version | None = Field(
        default=None, description="Refuse unless this is still the scope's active version"
    )


class CandleIn(Strict):
    time: IsoDateTime = Field(description="The bar's open time, on the timeframe's grid")
    open: Annotated[float, Field(gt=0)]
    high: Annotated[float, Field(gt=0)]
    low: Annotated[float, Field(gt=0)]
    close: Annotated[float, Field(gt=0)]
    volume: Annotated[float, Field(ge=0)]


class CandlesIn(Strict):
    symbol: Symbol
    timeframe: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,3}[mhdw]$")]
    candles: Annotated[list[CandleIn], Field(min_length=1, max_length=MAX_CANDLES)]


class CandlesOut(BaseModel):
    symbol: str
    timeframe: str
    created: int
    duplicates: int
