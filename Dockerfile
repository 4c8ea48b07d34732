# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.base.json ./
COPY gen ./gen
COPY src ./src
COPY bench ./bench
RUN npx tsc -p tsconfig.json && rm -rf dist/bench

# Runtime stage: production dependencies and the compiled output only, as a non-root user.
FROM node:20-slim
ENV NODE_ENV=production \
    INFERENCECACHE_GRPC_ADDRESS=0.0.0.0:50051 \
    INFERENCECACHE_HTTP_ADDRESS=0.0.0.0:8080
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 50051 8080
# SIGTERM reaches node directly (exec form), which drains and exits 0.
ENTRYPOINT ["node", "dist/src/main.js"]
