# One image for every service; docker-compose.yml picks the command per service:
#   node services/<name>/dist/main.js   (task-insert, scheduler, executor, dlq-processor)

FROM node:22-slim AS base
# Exactly the pnpm that package.json's packageManager names (pnpm@X.Y.Z, maybe +sha512.…).
COPY package.json /tmp/root-package.json
RUN npm install -g "$(node -p "require('/tmp/root-package.json').packageManager.split('+')[0]")" \
    && npm cache clean --force && rm /tmp/root-package.json
WORKDIR /app

# The workspace's manifests only (pnpm-lock.yaml, pnpm-workspace.yaml and every package.json
# of every workspace package), so the dependency layers below are rebuilt only when a manifest
# or the lockfile changes. Workspace packages added later are picked up without editing this file.
FROM base AS manifests
COPY . /src
RUN cd /src \
    && find . -type f ! -name package.json ! -name pnpm-lock.yaml ! -name pnpm-workspace.yaml ! -name .npmrc -delete \
    && find . -depth -mindepth 1 -type d -empty -delete

# All dependencies, then the TypeScript build (tsc -b writes each package's dist/).
FROM base AS build
COPY --from=manifests /src/ ./
RUN pnpm install --frozen-lockfile
COPY . .
RUN pnpm build

# Production dependencies only, for the runtime image.
FROM base AS prod-deps
COPY --from=manifests /src/ ./
RUN pnpm install --prod --frozen-lockfile

# What the services read at run time from each package under packages/ and services/: dist/,
# package.json, and the files read relative to dist/ (packages/common/lua and migrations,
# services/task-insert/public, services/executor/handler-thread.mjs); and the example handlers
# (HANDLERS=/app/examples/handlers.js). Sources, tests and TypeScript settings stay behind.
FROM build AS app-files
RUN mkdir /out && cp -r packages services examples /out/ \
    && cd /out && rm -rf */*/src */*/test */*/node_modules */*/tsconfig*.json */*/*.tsbuildinfo examples/node_modules

FROM node:22-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/ ./
COPY --from=app-files /out/ ./
USER node
EXPOSE 8000
CMD ["node", "services/task-insert/dist/main.js"]
