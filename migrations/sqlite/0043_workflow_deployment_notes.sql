-- A deployment's version note ("what changed"), sealed under the workspace's key like its source.
ALTER TABLE workflow_deployments ADD COLUMN note BLOB;
