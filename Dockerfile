# Multi-stage build: compile TypeScript, then ship only the compiled code and production dependencies.
FROM node:24-alpine AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:24-alpine
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist/src ./dist
# `validate` reads the CRD's schema and CEL rules from the generated file at run time.
COPY crds ./crds
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["run"]
