FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY jobs ./jobs
COPY schemas ./schemas
COPY drizzle ./drizzle
COPY drizzle-pg ./drizzle-pg
COPY templates ./templates
# npm ci runs `prepare`: the TypeScript build and the extract CSV writer (native/nl_csv.c).
COPY scripts ./scripts
COPY native ./native
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
RUN useradd --system --home /var/lib/nia-link nia && mkdir -p /var/lib/nia-link /var/lib/nia-link-keys /var/lib/nia-link-outbox && chown nia /var/lib/nia-link /var/lib/nia-link-keys /var/lib/nia-link-outbox
COPY --from=build /app /app
COPY bin ./bin
USER nia
EXPOSE 2222 8080
ENTRYPOINT ["node", "/app/bin/nia-link.js"]
CMD ["start"]
