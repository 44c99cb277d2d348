"""Old import path of :mod:`railguard.agent.heads` (the model files stay in ``models/agent``)."""

from ..agent.heads import (ACTION_FILE, AGENT_DIR, FEATURES_VERSION, MAX_TRAJECTORY_WINDOWS, RISK_LEVELS, TAG_WORDS,
                           TOOL_ACTION_FILE, TOOL_GROUPS, TRAJECTORY_FILE, URL_GROUPS, VERB_GROUPS, ActionHead,
                           TrajectoryHead, action_features, feature_names, softmax, structured_features,
                           trajectory_features)

__all__ = ["ACTION_FILE", "AGENT_DIR", "FEATURES_VERSION", "MAX_TRAJECTORY_WINDOWS", "RISK_LEVELS", "TAG_WORDS",
           "TOOL_ACTION_FILE", "TOOL_GROUPS", "TRAJECTORY_FILE", "URL_GROUPS", "VERB_GROUPS", "ActionHead",
           "TrajectoryHead", "action_features", "feature_names", "softmax", "structured_features",
           "trajectory_features"]
